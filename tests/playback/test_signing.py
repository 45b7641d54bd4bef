"""Signed media URLs: what verifies, and every way a URL is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from reelscale.playback.signing import (
    PREFIX,
    InvalidSignature,
    SignedPath,
    media_key,
    signature,
    signed_prefix,
    verify,
)

KEY = media_key(b"platform-secret-" + b"x" * 32)
NOW = 1_800_000_000
SESSION, ASSET = "ps_4f1c2a", "a1b2c3d4"
EXPIRES = NOW + 300


def parts(url_prefix: str, file: str = "720p/seg_00001.m4s") -> dict[str, str]:
    """The parts a router extracts from `{prefix}{file}`."""
    assert url_prefix.startswith(PREFIX + "/")
    session_id, expires, sig, asset_id, rest = url_prefix[len(PREFIX) + 1 :].split("/", 4)
    assert rest == ""
    return {
        "session_id": session_id,
        "expires": expires,
        "sig": sig,
        "asset_id": asset_id,
        "file": file,
    }


def signed(**overrides: str) -> dict[str, str]:
    values = parts(signed_prefix(KEY, session_id=SESSION, expires=EXPIRES, asset_id=ASSET))
    values.update(overrides)
    return values


def test_key_is_derived_and_separated_from_the_secret() -> None:
    secret = b"platform-secret-" + b"x" * 32
    assert media_key(secret) == hashlib.sha256(b"reelscale-media-url:" + secret).digest()
    assert media_key(secret) != media_key(secret + b"y")
    assert len(media_key(secret)) == 32


def test_signature_is_unpadded_base64url_of_the_documented_message() -> None:
    sig = signature(KEY, session_id=SESSION, expires=EXPIRES, asset_id=ASSET)
    mac = hmac.new(KEY, f"{SESSION}/{EXPIRES}/{ASSET}".encode(), hashlib.sha256).digest()
    assert sig == base64.urlsafe_b64encode(mac).decode().rstrip("=")
    assert len(sig) == 43
    assert "=" not in sig


def test_signed_prefix_shape() -> None:
    prefix = signed_prefix(KEY, session_id=SESSION, expires=EXPIRES, asset_id=ASSET)
    sig = signature(KEY, session_id=SESSION, expires=EXPIRES, asset_id=ASSET)
    assert prefix == f"/media/s/{SESSION}/{EXPIRES}/{sig}/{ASSET}/"


@pytest.mark.parametrize(
    "file", ["master.m3u8", "720p/index.m3u8", "720p/seg_00001.m4s", "trickplay/sprite_0.jpg"]
)
def test_valid_url_verifies_for_every_file_of_the_asset(file: str) -> None:
    checked = verify(KEY, **signed(file=file), now=NOW)
    assert checked == SignedPath(SESSION, EXPIRES, ASSET, file)


def test_valid_until_the_expiry_second_itself() -> None:
    verify(KEY, **signed(), now=EXPIRES)
    with pytest.raises(InvalidSignature, match="expired"):
        verify(KEY, **signed(), now=EXPIRES + 0.001)


def test_expired_even_with_a_good_signature() -> None:
    expired = NOW - 1
    url = parts(signed_prefix(KEY, session_id=SESSION, expires=expired, asset_id=ASSET))
    with pytest.raises(InvalidSignature, match="expired"):
        verify(KEY, **url, now=NOW)


def test_extending_the_expiry_breaks_the_signature() -> None:
    with pytest.raises(InvalidSignature, match="signature is invalid"):
        verify(KEY, **signed(expires=str(EXPIRES + 3600)), now=NOW)


def test_tampered_signature() -> None:
    sig = signed()["sig"]
    for index in (0, 21, 42):
        flipped = sig[:index] + ("A" if sig[index] != "A" else "B") + sig[index + 1 :]
        with pytest.raises(InvalidSignature, match="signature is invalid"):
            verify(KEY, **signed(sig=flipped), now=NOW)
    for bad in ("", sig[:-1], sig + "A", sig + "="):
        with pytest.raises(InvalidSignature):
            verify(KEY, **signed(sig=bad), now=NOW)


def test_signature_is_bound_to_the_asset_and_the_session() -> None:
    with pytest.raises(InvalidSignature, match="signature is invalid"):
        verify(KEY, **signed(asset_id="otherasset"), now=NOW)
    with pytest.raises(InvalidSignature, match="signature is invalid"):
        verify(KEY, **signed(session_id="ps_other"), now=NOW)


def test_signature_from_another_key_is_refused() -> None:
    other = media_key(b"another-platform-" + b"y" * 32)
    url = parts(signed_prefix(other, session_id=SESSION, expires=EXPIRES, asset_id=ASSET))
    with pytest.raises(InvalidSignature, match="signature is invalid"):
        verify(KEY, **url, now=NOW)


@pytest.mark.parametrize(
    "override",
    [
        {"session_id": ""},
        {"session_id": "a" * 65},
        {"session_id": "ps/x"},
        {"session_id": "ps.x"},
        {"session_id": "ps\x00"},
        {"asset_id": ""},
        {"asset_id": ".."},
        {"asset_id": "a" * 65},
        {"asset_id": "a%2fb"},
        {"expires": ""},
        {"expires": "-5"},
        {"expires": "12e9"},
        {"expires": "0x10"},
        {"expires": " 1800000300"},
        {"expires": "1" * 13},
    ],
    ids=repr,
)
def test_malformed_parts(override: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        verify(KEY, **signed(**override), now=NOW)


@pytest.mark.parametrize(
    "file",
    [
        "",
        "..",
        "../other/master.m3u8",
        "720p/../../other/master.m3u8",
        "720p/..",
        "/etc/passwd",
        "720p\\..\\..\\secret",
    ],
    ids=repr,
)
def test_traversal_in_the_file_is_refused(file: str) -> None:
    with pytest.raises(InvalidSignature, match="malformed media path"):
        verify(KEY, **signed(file=file), now=NOW)


def test_non_ascii_digits_in_expires_are_refused_not_crashed() -> None:
    with pytest.raises(InvalidSignature):
        verify(KEY, **signed(expires="²"), now=NOW)


def test_trailing_newline_fails_the_shape_check() -> None:
    with pytest.raises(InvalidSignature) as caught:
        verify(KEY, **signed(session_id=SESSION + "\n"), now=NOW)
    assert "malformed media URL" in str(caught.value)
