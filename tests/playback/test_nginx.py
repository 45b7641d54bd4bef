"""nginx serves signed media from disk and checks the very signatures Python makes.

A real nginx (with Debian's njs module) runs unprivileged from a temp prefix, in front of
a stub platform. Outside CI these tests skip when nginx is missing; with CI=true they fail.
Requests go through http.client so paths reach nginx byte for byte ("..", "%2e%2e").
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.server
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reelscale.media.blobs_local import LocalBlobStore
from reelscale.playback.nginx import DEBIAN_NJS_MODULE, write_runnable_config
from reelscale.playback.signing import InvalidSignature, media_key, signed_prefix, verify
from tests.conftest import IN_CI
from tests.e2e.server import free_port

KEY = media_key(b"nginx-test-secret-" + b"z" * 32)
SESSION = "ps_nginx1"
# Asset ids in the 32-hex form media publishes under assets/ (pipeline.asset_prefix).
ASSET, OTHER_ASSET = "a1" * 16, "b2" * 16
SECRET = b"TOP-SECRET-OUTSIDE-THE-ASSETS"
PLAYLIST = b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=730000\n720p/index.m3u8\n"
SEGMENT = bytes(range(256)) * 1200  # 300 KiB: several sendfile chunks, odd offsets show


def require_nginx() -> str:
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary and DEBIAN_NJS_MODULE.is_file():
        return binary
    message = "nginx with njs (Debian: nginx libnginx-mod-http-js) is not installed"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(f"{message}; install them or run with CI=true to make this a failure")
    raise AssertionError("unreachable")


@dataclass
class Site:
    port: int
    media_root: Path
    upstream_seen: list[dict[str, str]] = field(default_factory=list)

    def request(
        self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()


def stub_platform(seen: list[dict[str, str]]) -> http.server.ThreadingHTTPServer:
    """Stands in for the platform: answers 404 "platform" and records what it was sent."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            body = b"platform says no"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Served-By", "platform")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    binary = require_nginx()
    base = tmp_path_factory.mktemp("nginx")
    media_root = base / "media"
    # Written through the embedded blob store, as the platform writes them: this is the
    # layout (and the file modes) nginx must serve.
    store = LocalBlobStore(media_root)
    asyncio.run(store.put_bytes(f"assets/{ASSET}/master.m3u8", PLAYLIST))
    asyncio.run(store.put_bytes(f"assets/{ASSET}/720p/seg_00001.m4s", SEGMENT))
    asyncio.run(store.put_bytes(f"assets/{OTHER_ASSET}/master.m3u8", SECRET))
    (media_root / "assets" / ASSET / ".reelscale-tmp-0123").write_bytes(SECRET)
    (media_root / "assets" / ASSET / "notes.txt").write_bytes(SECRET)
    (media_root / "secret.txt").write_bytes(SECRET)
    (base / "outside.txt").write_bytes(SECRET)

    seen: list[dict[str, str]] = []
    upstream = stub_platform(seen)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    prefix = base / "prefix"
    config = write_runnable_config(
        prefix,
        listen_port=port,
        media_root=media_root,
        upstream=f"127.0.0.1:{upstream.server_address[1]}",
        media_key=KEY,
    )
    error_log = prefix / "error.log"
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(config), "-e", str(error_log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited with {process.returncode}:\n{error_log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"nginx did not listen within 10 s:\n{error_log.read_text()}")
            time.sleep(0.05)
        yield Site(port=port, media_root=media_root, upstream_seen=seen)
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        upstream.shutdown()
        upstream.server_close()
    log = error_log.read_text()
    assert "js exception" not in log, log
    assert "[emerg]" not in log, log


def prefix_for(
    *, session: str = SESSION, asset: str = ASSET, expires: int | None = None, key: bytes = KEY
) -> str:
    when = int(time.time()) + 600 if expires is None else expires
    return signed_prefix(key, session_id=session, expires=when, asset_id=asset)


def test_valid_url_serves_the_exact_bytes(site: Site) -> None:
    prefix = prefix_for()
    status, headers, body = site.request(prefix + "master.m3u8")
    assert (status, body) == (200, PLAYLIST)
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    # Playlists gain rungs while a title transcodes; segments never change.
    assert headers["cache-control"] == "private, no-cache"
    status, headers, body = site.request(prefix + "720p/seg_00001.m4s")
    assert (status, body) == (200, SEGMENT)
    assert headers["content-type"] == "video/iso.segment"
    assert headers["cache-control"] == "private, max-age=3600"
    status, headers, body = site.request(prefix + "master.m3u8", method="HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(PLAYLIST)))


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=0-0", 0, 0), ("bytes=1000-70000", 1000, 70000), ("bytes=-5", len(SEGMENT) - 5, None)],
)
def test_range_requests(site: Site, range_header: str, start: int, end: int | None) -> None:
    path = prefix_for() + "720p/seg_00001.m4s"
    status, headers, body = site.request(path, headers={"Range": range_header})
    last = len(SEGMENT) - 1 if end is None else end
    assert status == 206
    assert body == SEGMENT[start : last + 1]
    assert headers["content-range"] == f"bytes {start}-{last}/{len(SEGMENT)}"


def test_unsatisfiable_range(site: Site) -> None:
    path = prefix_for() + "720p/seg_00001.m4s"
    status, _, _ = site.request(path, headers={"Range": f"bytes={len(SEGMENT)}-"})
    assert status == 416


def test_tampered_signature_is_forbidden(site: Site) -> None:
    prefix = prefix_for()
    parts = prefix.split("/")  # ['', 'media', 's', session, expires, sig, asset, '']
    sig = parts[5]
    for forged in (sig[:-1] + ("A" if sig[-1] != "A" else "B"), sig[:-1], sig + "A"):
        status, _, body = site.request("/".join([*parts[:5], forged, *parts[6:]]) + "master.m3u8")
        assert status == 403
        assert PLAYLIST not in body


def test_expired_url_is_forbidden(site: Site) -> None:
    status, _, _ = site.request(prefix_for(expires=int(time.time()) - 5) + "master.m3u8")
    assert status == 403


def test_longer_expiry_breaks_the_signature(site: Site) -> None:
    parts = prefix_for().split("/")
    parts[4] = str(int(parts[4]) + 3600)
    status, _, _ = site.request("/".join(parts) + "master.m3u8")
    assert status == 403


def test_signature_is_bound_to_asset_session_and_key(site: Site) -> None:
    good = prefix_for().split("/")
    other_asset = "/".join([*good[:6], OTHER_ASSET, ""]) + "master.m3u8"
    other_session = "/".join([*good[:3], "ps_other", *good[4:]]) + "master.m3u8"
    other_key = prefix_for(key=media_key(b"another-secret-" + b"q" * 32)) + "master.m3u8"
    for path in (other_asset, other_session, other_key):
        status, _, body = site.request(path)
        assert status == 403, path
        assert SECRET not in body


def test_missing_file_with_a_valid_signature_is_404(site: Site) -> None:
    status, _, _ = site.request(prefix_for() + "720p/seg_99999.m4s")
    assert status == 404


def test_only_media_types_are_served(site: Site) -> None:
    # As playback/delivery.py: a correctly signed URL for another kind of file is a 404.
    status, _, body = site.request(prefix_for() + "notes.txt")
    assert (status, body.count(SECRET)) == (404, 0)


def test_only_get_and_head(site: Site) -> None:
    status, _, _ = site.request(prefix_for() + "master.m3u8", method="DELETE")
    assert status == 403


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (f"../{OTHER_ASSET}/master.m3u8", 403),  # normalised to the other asset: signed for ASSET
        (f"%2e%2e/{OTHER_ASSET}/master.m3u8", 403),
        (f"%2E%2e%2f{OTHER_ASSET}%2Fmaster.m3u8", 403),
        (f"720p/../../{OTHER_ASSET}/master.m3u8", 403),
        ("../../secret.txt", 403),  # lands elsewhere under /media/s/: refused there
        ("../../../../../secret.txt", 404),  # leaves /media/s/: the platform's 404
        ("../../../../../../../../outside.txt", 400),  # above the root
        ("%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/outside.txt", 400),
        ("720p\\..\\..\\..\\secret.txt", 403),
        (f"%252e%252e/{OTHER_ASSET}/master.m3u8", 403),  # double encoding stays literal
        (".reelscale-tmp-0123", 403),  # a half-written temp file of the blob store
        ("720p/seg_00001.m4s%00.txt", 400),
        ("720p/seg_00001.m4s%0A", 403),
    ],
)
def test_traversal_never_reaches_a_file_outside_the_asset(
    site: Site, suffix: str, expected: int
) -> None:
    status, _, body = site.request(prefix_for() + suffix)
    assert SECRET not in body
    assert status == expected


def test_malformed_media_urls_are_forbidden_not_proxied(site: Site) -> None:
    good = prefix_for().split("/")
    before = len(site.upstream_seen)
    for path in (
        "/media/s/",
        "/media/s/" + "/".join(good[3:6]) + "/../secret.txt",  # asset ".."
        "/media/s/" + "/".join([good[3], "0x10", *good[5:]]) + "master.m3u8",
        "/media/s/" + "/".join([good[3], "1" * 13, *good[5:]]) + "master.m3u8",
        "/media/s/" + "/".join(["a" * 65, *good[4:]]) + "master.m3u8",
        prefix_for(asset="a1") + "master.m3u8",  # signed, but not an asset id media makes
        prefix_for(asset=ASSET.upper()) + "master.m3u8",
    ):
        status, _, body = site.request(path)
        assert SECRET not in body
        assert status == 403, path
    assert len(site.upstream_seen) == before


def test_query_strings_are_not_part_of_the_path(site: Site) -> None:
    status, _, body = site.request(prefix_for() + "master.m3u8?x=/../../../../secret.txt")
    assert (status, body) == (200, PLAYLIST)


def test_everything_else_goes_to_the_platform(site: Site) -> None:
    status, headers, body = site.request(
        "/v1/catalog/titles?x=1", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert (status, body, headers["x-served-by"]) == (404, b"platform says no", "platform")
    seen = site.upstream_seen[-1]
    assert seen["path"] == "/v1/catalog/titles?x=1"
    assert seen["x-forwarded-for"] == "127.0.0.1", "a client must not pick its own address"
    assert len(seen["x-request-id"]) == 32


def test_nginx_and_python_agree(site: Site) -> None:
    """The same URLs, judged by nginx and by playback.signing.verify."""
    now = int(time.time())
    good = prefix_for(expires=now + 600).split("/")
    candidates = [
        good,
        [*good[:4], "0" + good[4], *good[5:]],  # leading zero: Python parses it as a number
        [*good[:4], str(now + 601), *good[5:]],
        [*good[:5], good[5][::-1], *good[6:]],
        prefix_for(expires=now - 1).split("/"),
        prefix_for(session="ps-" + "x" * 61).split("/"),
    ]
    for parts in candidates:
        try:
            verify(KEY, **dict(zip(FIELDS, parts[3:7], strict=True)), file="master.m3u8", now=now)
            python = 200
        except InvalidSignature:
            python = 403
        status, _, _ = site.request("/".join(parts) + "master.m3u8")
        assert status == python, parts


FIELDS = ("session_id", "expires", "sig", "asset_id")
