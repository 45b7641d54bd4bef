"""The proxy's request-path pieces that remember earlier answers or cut work short, checked
against the plain rule they stand in for: rewritten response heads (kept by their exact
bytes) and the prefix router (which splits a path no deeper than its routes go); and the
in-process bench that times the request path."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from reelscale.edge.bench_proxy import in_process
from reelscale.edge.proxy import http1
from reelscale.edge.proxy.config import DEFAULT_ROUTES
from reelscale.edge.proxy.routing import Router
from tests.edge.test_proxy import HELLO_CHUNKS, Seen, answer_chunked, origins, running

HEADS = [
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 128\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-request-id: theirs\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",  # close-delimited
    b"HTTP/1.1 204 No Content\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n"
    b"Upgrade: h2c\r\nX-Kept: 2\r\n\r\n",
    b'HTTP/1.1 304 Not Modified\r\nETag: "a"\r\nProxy-Authenticate: Basic\r\n\r\n',
]
FLAGS = list(itertools.product([False, True], repeat=3))  # keep_alive, http11, bodiless


def rewrite(
    head: bytes, flags: tuple[bool, bool, bool], rid: bytes, rest: bytes
) -> tuple[bytes, bool, bool]:
    keep_alive, http11, bodiless = flags
    out = http1.rewrite_response_head(
        head, request_id=rid, keep_alive=keep_alive, http11=http11, bodiless=bodiless, rest=rest
    )
    return out.data, out.chunked, out.close_delimited


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("flags", FLAGS)
def test_a_head_seen_before_is_rewritten_as_if_new(
    head: bytes, flags: tuple[bool, bool, bool]
) -> None:
    for table in http1._REWRITTEN:
        table.clear()
    first = rewrite(head, flags, b"id-1", b"body")
    remembered = rewrite(head, flags, b"id-2", b"")  # same head: from the table
    for table in http1._REWRITTEN:
        table.clear()
    assert remembered == rewrite(head, flags, b"id-2", b"")
    assert first == rewrite(head, flags, b"id-1", b"body")
    data = first[0]
    assert data.startswith(b"HTTP/1.1 ")
    assert data.endswith(b"\r\n\r\nbody")
    assert data.lower().count(b"x-request-id:") == 1
    for hop in (b"keep-alive: timeout", b"upgrade:", b"proxy-authenticate:", b"x-secret:"):
        assert hop not in data.lower()


def test_the_head_table_stays_bounded() -> None:
    for table in http1._REWRITTEN:
        table.clear()
    for n in range(http1._REWRITTEN_MAX * 3):
        head = b'HTTP/1.1 200 OK\r\nETag: "%d"\r\ncontent-length: 0\r\n\r\n' % n
        rewrite(head, (True, True, False), b"id", b"")
    assert 0 < len(http1._REWRITTEN[3]) <= http1._REWRITTEN_MAX
    long_head = b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * http1._MAX_CACHED_HEAD + b"\r\n\r\n"
    rewrite(long_head, (True, True, False), b"id", b"")
    assert long_head not in http1._REWRITTEN[3]


def longest_prefix(routes: list[tuple[str, str]], path: str) -> str:
    """The routing rule as docs/edge.md states it, tried prefix by prefix."""
    best, best_length = "default", -1
    for prefix, pool in routes:
        if prefix.endswith("/"):
            matches = path.startswith(prefix)
        else:
            matches = path == prefix or path.startswith(prefix + "/")
        if matches and len(prefix) > best_length:
            best, best_length = pool, len(prefix)
    return best


@pytest.mark.parametrize(
    "routes",
    [
        list(DEFAULT_ROUTES),
        [("/", "web"), ("/v1/admin/members", "accounts")],
        [("/a/", "x"), ("/a/b", "y"), ("/a/b/c/", "z"), ("/q", "w")],
        [],
    ],
)
def test_the_router_agrees_with_the_longest_prefix_rule(routes: list[tuple[str, str]]) -> None:
    router = Router(routes)
    words = ["", "a", "b", "c", "q", "v1", "auth", "admin", "members", "media", "s", "x"]
    rng = random.Random(7)
    paths = ["/", "/a/b/c", "/a/b/c/", "/a/b/c/d/e", "/v1/admin/members/5/x/y", "*"]
    for _ in range(5000):
        paths.append("/" + "/".join(rng.choice(words) for _ in range(rng.randint(0, 7))))
    for path in paths:
        assert router.pool_for(path) == longest_prefix(routes, path), path


def test_the_in_process_bench_runs_the_whole_request_path() -> None:
    figure = in_process(requests=50, repeats=1, headers=3)
    assert figure["python_us_per_request"] > 0
    assert figure["extra_headers"] == 3


@pytest.mark.parametrize(
    ("request_head", "http11", "keep_alive"),
    [
        (b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n", True, True),
        (b"GET /c HTTP/1.1\r\nConnection: close\r\n\r\n", True, False),
        (b"GET /c HTTP/1.0\r\n\r\n", False, False),
        (b"GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False, True),
        (b"GET /c HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n", False, True),
        (b"GET /c HTTP/0.9\r\nConnection: keep-alive\r\n\r\n", False, True),
    ],
)
async def test_the_client_version_decides_the_framing_whatever_keeps_it_alive(
    request_head: bytes, http11: bool, keep_alive: bool
) -> None:
    """The proxy infers HTTP/1.1 from llhttp's keep-alive answer when no Connection header
    spoke; a 1.0 client kept alive by one must still get its chunks de-chunked."""

    async def chunked(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        return await answer_chunked(writer)

    async with origins(chunked) as (default,), running(f"default={default.url}") as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(request_head)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if http11:  # chunks, passed through; read to the last one (it may stay open)
            body = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        else:  # de-chunked and close-delimited: read to the close
            body = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert (b"connection: close" in head.lower()) is not (http11 and keep_alive)
    if http11:
        assert b"transfer-encoding: chunked" in head.lower()
        assert body == HELLO_CHUNKS
    else:
        assert b"transfer-encoding" not in head.lower()
        assert body == b"hello world"
