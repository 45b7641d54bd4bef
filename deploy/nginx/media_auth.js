// Checks reelscale's signed media URLs inside nginx, so segments never pass through Python.
//
// The rule is src/reelscale/playback/signing.py's, byte for byte:
//   /media/s/{session}/{expires}/{sig}/{asset}/{file}
//   sig = base64url(HMAC-SHA256(key, "{session}/{expires}/{asset}")), unpadded
// with key = SHA-256("reelscale-media-url:" + platform secret), given to nginx as hex in
// $reelscale_media_key (rendered by reelscale.playback.nginx, never committed).
//
// nginx has already normalised the URI ("..", "%2e%2e", "%2f" resolved) and the location
// regex has split it into $rs_session, $rs_expires, $rs_sig, $rs_asset and $rs_file, each
// restricted to safe characters. This module decides only whether the signature holds.
// Written for njs 0.7.9 (Debian 12's libnginx-mod-http-js): ES5 plus modules.

var crypto = require('crypto');

var SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
var EXPIRES = /^[0-9]{1,12}$/;
var KEY_HEX = /^[0-9a-f]{64}$/;

// Compares without returning early, so the time taken does not reveal how many leading
// characters of a forged signature were right.
function sameString(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    var diff = 0;
    for (var i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

// js_set handler: "1" when the URL's signature is valid and unexpired, "0" otherwise.
function check(r) {
    var v = r.variables;
    var session = v.rs_session || '';
    var expires = v.rs_expires || '';
    var sig = v.rs_sig || '';
    var asset = v.rs_asset || '';
    var keyHex = v.reelscale_media_key || '';

    if (!SEGMENT.test(session) || !SEGMENT.test(asset) || !EXPIRES.test(expires)) {
        return '0';
    }
    if (!KEY_HEX.test(keyHex)) {
        r.error('reelscale: $reelscale_media_key is not 64 hex digits; refusing all media');
        return '0';
    }
    // Python signs str(int(expires)); parsing here too makes "0042" sign as "42" in both.
    var seconds = parseInt(expires, 10);
    if (seconds < Date.now() / 1000) {
        return '0';
    }
    var expected = crypto
        .createHmac('sha256', Buffer.from(keyHex, 'hex'))
        .update(session + '/' + String(seconds) + '/' + asset)
        .digest('base64url');
    return sameString(expected, sig) ? '1' : '0';
}

export default { check };
