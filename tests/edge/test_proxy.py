"""The standalone edge proxy on real sockets: routing, headers, streaming, pools, retries,
balancing, ejection, shedding, configuration.

Origins are small HTTP/1.1 servers written here on asyncio streams, so a test can make an
instance answer, stream, hang, reset or talk nonsense on purpose. The proxy runs in the
test's event loop on a loopback port (`reelscale serve --roles edge` runs the same
`ProxyServer`; tests/edge/test_proxy_redis.py starts it as real processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from reelscale.core.clock import FakeClock
from reelscale.edge.priority import Classifier, Priority
from reelscale.edge.proxy.balancer import EjectionPolicy, Pool
from reelscale.edge.proxy.classify import CompiledClassifier
from reelscale.edge.proxy.config import DEFAULT_ROUTES, EdgeSettings, parse_upstreams
from reelscale.edge.proxy.retry import RetryBudget, idempotent
from reelscale.edge.proxy.routing import Router
from reelscale.edge.proxy.server import ProxyServer
from reelscale.edge.proxy.upstreams import Origin

# --------------------------------------------------------------------------- test origins


@dataclass
class Seen:
    """One request as an origin received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


Behaviour = Callable[[Seen, asyncio.StreamWriter], Awaitable[bool]]


async def ok(seen: Seen, writer: asyncio.StreamWriter) -> bool:
    """200 with a small JSON body naming the request; keeps the connection."""
    body = orjson.dumps({"target": seen.target, "method": seen.method})
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: keep-alive\r\nkeep-alive: timeout=30\r\nx-hop: secret\r\n"
        b"connection: x-hop\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    return True


async def hang(_seen: Seen, _writer: asyncio.StreamWriter) -> bool:
    await asyncio.sleep(3600)
    return False


async def reset(_seen: Seen, writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()
    return False


async def garbage(_seen: Seen, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"SURPRISE this is not HTTP at all\r\n\r\n")
    await writer.drain()
    writer.close()
    return False


def status(code: int) -> Behaviour:
    async def answer(_seen: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 %d Whatever\r\ncontent-length: 2\r\n\r\nno" % code)
        await writer.drain()
        return True

    return answer


@dataclass
class ScriptedOrigin:
    """An HTTP/1.1 origin on loopback whose behaviour a test chooses."""

    behaviour: Behaviour = ok
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ScriptedOrigin:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                seen = await read_request(reader, number)
                if seen is None:
                    break
                self.seen.append(seen)
                if not await self.behaviour(seen, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader, connection: int) -> Seen | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        pieces = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            pieces.append(await reader.readexactly(size))
            await reader.readexactly(2)
            if size == 0:
                break
        body = b"".join(pieces)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, target, headers, body, connection)


@contextlib.asynccontextmanager
async def origins(*behaviours: Behaviour) -> AsyncIterator[list[ScriptedOrigin]]:
    started = [await ScriptedOrigin(behaviour).start() for behaviour in behaviours]
    try:
        yield started
    finally:
        for origin in started:
            await origin.stop()


@contextlib.asynccontextmanager
async def running(
    upstreams: str, *, clock: FakeClock | None = None, **settings: Any
) -> AsyncIterator[ProxyServer]:
    """A ProxyServer on a loopback port with test-sized timeouts."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "timer_resolution_s": 0.02,
        "header_timeout_s": 2.0,
        "first_byte_timeout_s": 5.0,
        "address_rate_per_s": 10_000,
        "address_burst": 10_000,
        "limit_initial": 200,
        "limit_min": 200,
        "limit_max": 200,
        "shutdown_grace_s": 1.0,
        # The test's own clients share this process's CPU: only tests of shedding shed.
        "utilisation_shedding": False,
    }
    values.update(settings)
    proxy = ProxyServer(EdgeSettings(upstreams=upstreams, **values), clock=clock)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def raw_exchange(port: int, request: bytes, *, timeout: float = 5) -> bytes:
    """Send bytes, read until the proxy closes (or the timeout), return what came back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()


def problem_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["type"].startswith("https://reelscale.dev/problems/")
    return body


# --------------------------------------------------------------------------- routing


async def test_routes_by_prefix_to_their_pools_and_the_rest_to_default() -> None:
    async with origins(ok, ok, ok) as (catalog, playback, default):
        upstreams = f"catalog={catalog.url};playback={playback.url};default={default.url}"
        async with running(upstreams) as proxy, httpx.AsyncClient(base_url=proxy.url) as http:
            for path in ("/v1/catalog/titles?page=2", "/v1/catalog"):
                assert (await http.get(path)).status_code == 200
            assert (await http.get("/media/s/abc/1/sig/asset/seg.m4s")).status_code == 200
            assert (await http.get("/v1/playback/history")).status_code == 200
            # Not configured (recs), no route (/v1/catalogue), and the UI: all default.
            for path in ("/v1/recs/home", "/v1/catalogue", "/"):
                assert (await http.get(path)).status_code == 200
            # Percent-escapes are decoded before routing.
            assert (await http.get("/v1/%63atalog/genres")).status_code == 200
    assert [s.target for s in catalog.seen] == [
        "/v1/catalog/titles?page=2",
        "/v1/catalog",
        "/v1/%63atalog/genres",
    ]
    assert [s.target for s in playback.seen] == [
        "/media/s/abc/1/sig/asset/seg.m4s",
        "/v1/playback/history",
    ]
    assert [s.target for s in default.seen] == ["/v1/recs/home", "/v1/catalogue", "/"]


def test_router_matches_whole_segments_and_prefers_the_longest() -> None:
    router = Router([*DEFAULT_ROUTES, ("/v1/admin", "ops")])
    assert router.pool_for("/v1/auth/login") == "accounts"
    assert router.pool_for("/v1/authx") == "default"
    assert router.pool_for("/v1/admin/keys/rotate") == "accounts"
    assert router.pool_for("/v1/admin/dead-letters") == "ops"
    assert router.pool_for("/media/s/x") == "playback"
    assert router.pool_for("/media") == "default"  # `/media/` routes what lies below only
    assert router.pool_for("/.well-known/jwks.json") == "accounts"
    assert Router([("/", "web")]).pool_for("/anything") == "web"


async def test_dot_segments_and_non_path_targets_are_refused() -> None:
    async with origins(ok) as (default,), running(f"default={default.url}") as proxy:
        for target in (b"/v1/catalog/../auth/login", b"/v1/%2e%2e/x", b"http://x/y"):
            raw = await raw_exchange(proxy.port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
            assert raw.startswith(b"HTTP/1.1 400 "), raw
    assert default.seen == []


# --------------------------------------------------------------------------- headers


async def test_request_ids_forwarding_headers_and_hop_by_hop_headers() -> None:
    async with (
        origins(ok) as (default,),
        running(f"default={default.url}") as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        kept = await http.get(
            "/x",
            headers={
                "X-Request-ID": "req-123",
                "X-Forwarded-For": "198.51.100.1",
                "X-Forwarded-Proto": "https",  # a client cannot claim TLS it did not use
                "Connection": "keep-alive, X-Private",
                "X-Private": "only for the first hop",
                "Keep-Alive": "timeout=5",
                "Proxy-Authorization": "Basic c2VjcmV0",
                "TE": "trailers",
            },
        )
        made = await http.get("/y", headers={"X-Request-ID": "bad id with spaces"})
    assert kept.status_code == 200
    assert kept.headers["x-request-id"] == "req-123"
    # The origin's hop-by-hop headers never reach the client.
    for name in ("keep-alive", "x-hop"):
        assert name not in kept.headers
    first, second = default.seen
    assert first.headers["x-request-id"] == "req-123"
    # The client is trusted as no proxy (REELSCALE_TRUSTED_PROXIES is empty): its own
    # X-Forwarded-For is dropped, and its address alone goes up (test_forwarded.py).
    assert first.headers["x-forwarded-for"] == "127.0.0.1"
    assert first.headers["x-forwarded-proto"] == "http"
    for name in ("x-private", "keep-alive", "proxy-authorization", "te"):
        assert name not in first.headers
    assert first.headers["host"].startswith("127.0.0.1:")
    # An unusable id is replaced, and the same id goes up and comes back.
    generated = second.headers["x-request-id"]
    assert generated != "bad id with spaces"
    assert made.headers["x-request-id"] == generated
    assert second.headers["x-forwarded-for"] == "127.0.0.1"


# --------------------------------------------------------------------------- bodies


async def test_bodies_stream_up_with_length_or_chunked() -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 256 * 1024):
            yield payload[start : start + 256 * 1024]

    async with (
        origins(ok) as (default,),
        running(f"default={default.url}") as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        sized = await http.put("/v1/media/uploads/1", content=payload)
        chunked = await http.post("/v1/media/uploads/2", content=pieces())
    assert sized.status_code == chunked.status_code == 200
    assert [s.body for s in default.seen] == [payload, payload]
    assert default.seen[0].headers["content-length"] == str(len(payload))
    assert default.seen[1].headers["transfer-encoding"] == "chunked"


async def test_a_large_response_streams_with_backpressure_not_buffered() -> None:
    """The client reads nothing for a while: the origin must be held back, not drained."""
    total = 256 * 1024 * 1024
    piece = bytes(range(256)) * 256  # 64 KiB
    sent = 0

    async def stream(_seen: Seen, writer: asyncio.StreamWriter) -> bool:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        while sent < total:
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
        return True

    async with origins(stream) as (default,), running(f"default={default.url}") as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /v1/media/big HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        await asyncio.sleep(1.0)
        held_back = sent
        # Socket buffers on both hops hold some; a buffering proxy would have taken it all.
        assert held_back < 96 * 1024 * 1024, held_back
        digest, received = hashlib.sha256(), 0
        while received < total:
            chunk = await reader.read(1024 * 1024)
            assert chunk
            digest.update(chunk)
            received += len(chunk)
        writer.close()
    expected = hashlib.sha256(piece * (total // len(piece))).hexdigest()
    assert digest.hexdigest() == expected


async def test_an_upload_is_held_back_while_the_origin_does_not_read() -> None:
    gate = asyncio.Event()
    received = hashlib.sha256()

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await gate.wait()
        left = length
        while left:
            chunk = await reader.read(min(left, 1 << 20))
            received.update(chunk)
            left -= len(chunk)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow_reader, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    total = 64 * 1024 * 1024
    piece = os.urandom(1 << 20)
    written = 0
    async with running(f"default=http://127.0.0.1:{port}") as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

        async def upload() -> None:
            nonlocal written
            writer.write(b"PATCH /v1/media/uploads/u HTTP/1.1\r\nHost: x\r\n")
            writer.write(b"content-length: %d\r\n\r\n" % total)
            while written < total:
                writer.write(piece)
                written += len(piece)
                await writer.drain()

        sending = asyncio.create_task(upload())
        await asyncio.sleep(1.0)
        assert written < 48 * 1024 * 1024, written  # held back: nobody buffered 64 MiB
        gate.set()
        await asyncio.wait_for(sending, 30)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 204 ")
        writer.close()
    server.close()
    assert received.hexdigest() == hashlib.sha256(piece * (total // len(piece))).hexdigest()


HELLO_CHUNKS = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"  # "hello world", chunked


async def answer_chunked(writer: asyncio.StreamWriter) -> bool:
    """An origin's chunked 200 of "hello world" (the proxy de-chunks it for HTTP/1.0)."""
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + HELLO_CHUNKS)
    await writer.drain()
    return True


async def test_head_and_http10_and_chunked_responses_keep_framing_right() -> None:
    async def chunked(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        if seen.method != "HEAD":
            return await answer_chunked(writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        await writer.drain()
        return True

    async with origins(chunked) as (default,), running(f"default={default.url}") as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        # HEAD then GET on one connection: the HEAD's Content-Length must not eat the GET.
        writer.write(b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"content-length: 1000" in head.lower()
        writer.write(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert await reader.readuntil(b"0\r\n\r\n") == HELLO_CHUNKS
        writer.close()
        # An HTTP/1.0 client cannot read chunks: it gets the body plain, then a close.
        raw = await raw_exchange(proxy.port, b"GET /c HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"hello world"
    assert len({s.connection for s in default.seen}) == 1  # all three on one upstream link


async def test_an_upstream_link_switches_between_http10_and_http11_clients() -> None:
    # The response parser only hands body pieces to Python while de-chunking for an
    # HTTP/1.0 client; a link that served one must pass the next 1.1 client's chunks on.
    async def by_target(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        if seen.target != "/plain":
            return await answer_chunked(writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain")
        await writer.drain()
        return True

    async with origins(by_target) as (default,), running(f"default={default.url}") as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /plain HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"connection: keep-alive" in head.lower()
        assert await reader.readexactly(5) == b"plain"
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /chunks HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        chunks = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        assert chunks == HELLO_CHUNKS
        writer.close()
        # And back: an HTTP/1.0 client after a 1.1 one gets the chunks de-chunked.
        raw = await raw_exchange(proxy.port, b"GET /chunks HTTP/1.0\r\n\r\n")
    _, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"hello world"
    assert len({s.connection for s in default.seen}) == 1  # all on one upstream link


async def test_keep_alive_reuses_upstream_connections() -> None:
    async with (
        origins(ok) as (default,),
        running(f"default={default.url}") as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        for _ in range(20):
            assert (await http.get("/v1/catalog/titles")).status_code == 200
    assert default.connections == 1


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with origins(ok) as (default,), running(f"default={default.url}") as proxy:
        pipelined = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
        last = b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"
        raw = await raw_exchange(proxy.port, pipelined + last)
    assert [s.target for s in default.seen] == ["/p0", "/p1", "/p2", "/p3", "/p4", "/last"]
    assert raw.count(b"HTTP/1.1 200 OK") == 6
    positions = [raw.index(b'"/p%d"' % i) for i in range(5)]
    assert positions == sorted(positions)


async def test_a_half_closed_client_still_gets_its_answer_then_a_close() -> None:
    async with origins(ok) as (default,), running(f"default={default.url}") as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write_eof()
        raw = await asyncio.wait_for(reader.read(-1), 5)  # ends only if the proxy closes
        writer.close()
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert raw.endswith(b'{"target":"/half","method":"GET"}')


# --------------------------------------------------------------------------- own endpoints


async def test_healthz_and_metrics_are_answered_by_the_proxy_itself() -> None:
    async with (
        origins(ok) as (default,),
        running(f"default={default.url}") as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        await http.get("/v1/catalog/titles")
        health = await http.get("/healthz")
        metrics = await http.get("/metrics")
        wrong = await http.post("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert metrics.status_code == 200
    text = metrics.text
    assert 'reelscale_edge_proxy_responses_total{pool="default",status="200"} 1.0' in text
    assert "reelscale_edge_concurrency_limit" in text
    assert "reelscale_edge_proxy_request_duration_seconds_bucket" in text
    assert wrong.status_code == 405
    problem_of(wrong)
    assert [s.target for s in default.seen] == ["/v1/catalog/titles"]


# --------------------------------------------------------------------------- shedding


async def test_the_proxy_sheds_by_priority_with_the_edge_limiter() -> None:
    gate = asyncio.Event()

    async def slow(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        await gate.wait()
        return await ok(seen, writer)

    async with (
        origins(slow) as (default,),
        running(f"default={default.url}", limit_initial=4, limit_min=4, limit_max=4) as proxy,
        httpx.AsyncClient(base_url=proxy.url, timeout=10) as http,
    ):
        plays = [
            asyncio.create_task(http.get(f"/media/s/session/1/sig/asset/seg{i}.m4s"))
            for i in range(4)
        ]
        while len(default.seen) < 4:
            await asyncio.sleep(0.01)
        prefetch = await http.get("/v1/catalog/titles", headers={"X-Prefetch": "1"})
        browse = await http.get("/v1/catalog/titles")
        gate.set()
        assert [(await play).status_code for play in plays] == [200] * 4
        after = await http.get("/v1/catalog/titles")
    assert prefetch.status_code == browse.status_code == 503
    assert int(prefetch.headers["retry-after"]) == 30  # BULK backs off longest
    assert int(browse.headers["retry-after"]) == 5
    assert problem_of(prefetch)["instance"] == "/v1/catalog/titles"
    assert after.status_code == 200
    assert len(default.seen) == 5  # the shed requests never reached the origin


# --------------------------------------------------------------------------- retries


def test_the_retry_budget_is_a_fraction_of_requests() -> None:
    budget = RetryBudget(ratio=0.1, burst=3)
    for _ in range(9):
        budget.record_request()
    assert not budget.try_spend()
    budget.record_request()
    assert budget.try_spend()  # ten requests earn exactly one retry
    assert not budget.try_spend()
    for _ in range(1000):
        budget.record_request()
    assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]  # burst caps
    assert budget.retries == 4
    assert budget.retries <= 0.1 * budget.requests


def test_idempotency_rule() -> None:
    for method in (b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"):
        assert idempotent(method, idempotency_key=False)
    for method in (b"POST", b"PATCH"):
        assert not idempotent(method, idempotency_key=False)
        assert idempotent(method, idempotency_key=True)


# --------------------------------------------------------------------------- balancing


def pool_of(
    *names: str, policy: EjectionPolicy | None = None, clock: FakeClock | None = None
) -> Pool:
    import random

    return Pool(
        "p",
        [Origin(name, 80) for name in names],
        policy=policy or EjectionPolicy(),
        budget=RetryBudget(ratio=0.1, burst=10),
        monotonic=(clock or FakeClock()).monotonic,
        rng=random.Random(7),
    )


def test_two_choices_never_send_to_the_busiest_of_three() -> None:
    pool = pool_of("a", "b", "c")
    busy, *_ = pool.instances
    busy.outstanding = 10
    picks = [pool.pick() for _ in range(3000)]
    counts = {i.origin.host: picks.count(i) for i in pool.instances}
    assert counts["a"] == 0
    assert 1300 < counts["b"] < 1700
    assert 1300 < counts["c"] < 1700


def test_ejection_grows_returns_and_never_takes_the_whole_pool() -> None:
    clock = FakeClock()
    policy = EjectionPolicy(consecutive_failures=3, base_s=10, max_s=25, max_percent=50)
    pool = pool_of("a", "b", policy=policy, clock=clock)
    a, b = pool.instances
    assert [pool.failed(a) for _ in range(3)] == [False, False, True]
    assert {pool.pick() for _ in range(50)} == {b}
    # b fails too, but ejecting it would leave nothing: it stays.
    assert not any(pool.failed(b) for _ in range(10))
    clock.advance(10)
    assert a.available(clock.monotonic())  # back after its interval
    for _ in range(3):
        pool.failed(a)
    assert a.ejected_until == clock.monotonic() + 20  # the second time, twice as long
    clock.advance(20)
    for _ in range(3):
        pool.failed(a)
    assert a.ejected_until == clock.monotonic() + 25  # capped
    # A sole instance is never ejected.
    single = pool_of("only", policy=policy, clock=clock)
    assert not any(single.failed(single.instances[0]) for _ in range(10))


async def test_an_instance_answering_5xx_is_ejected_and_comes_back() -> None:
    clock = FakeClock()
    async with (
        origins(status(500), ok) as (bad, good),
        running(
            f"default={bad.url},{good.url}",
            clock=clock,
            eject_consecutive_failures=3,
            eject_base_s=30,
        ) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        statuses = [(await http.get("/x")).status_code for _ in range(40)]
        assert statuses.count(500) == 3  # then it was ejected
        assert len(bad.seen) == 3
        after = [(await http.get("/x")).status_code for _ in range(10)]
        assert after == [200] * 10
        metrics = (await http.get("/metrics")).text
        ejected = f'instance_ejected{{instance="127.0.0.1:{bad.port}",pool="default"}} 1.0'
        assert f"reelscale_edge_proxy_{ejected}" in metrics
        clock.advance(31)
        back = [(await http.get("/x")).status_code for _ in range(40)]
    assert 500 in back  # returned to rotation (and, still failing, ejected again)
    assert len(bad.seen) > 3


# --------------------------------------------------------------------------- classifier


def test_compiled_classifier_answers_exactly_as_the_classifier() -> None:
    classifier = Classifier()
    compiled = CompiledClassifier(classifier)
    paths = [
        "/media/s/a/1/sig/asset/seg.m4s",
        "/v1/playback/sessions",
        "/v1/playback/sessions/abc/heartbeat",
        "/v1/playback/sessions/abc/stop",
        "/v1/playback/continue-watching",
        "/v1/playback/history",
        "/v1/playback/resume/xyz",
        "/v1/playback/license",
        "/v1/profiles/p1/select",
        "/v1/catalog/titles",
        "/v1/recs/home",
        "/v1/logs",
        "/v1/analytics/x",
        "/v1/events/abc",
        "/healthz",
        "/metrics",
        "/",
        "/v1/auth/login",
    ]
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "PROPFIND"):
        for path in paths:
            for headers in (
                None,
                {"x-prefetch": "1"},
                {"sec-purpose": "prefetch"},
                {"x-prefetch": "0"},
            ):
                assert compiled.classify(method, path, headers) == classifier.classify(
                    method=method, path=path, headers=headers
                ), (method, path, headers)
    assert compiled.classify("GET", "/media/s/x", None) is Priority.CRITICAL


# --------------------------------------------------------------------------- settings


def test_upstreams_parse_and_refuse_clearly() -> None:
    pools = parse_upstreams(
        " catalog=http://10.0.0.5:8001, http://10.0.0.6:8001 ; default=http://10.0.0.7 "
    )
    assert pools == {
        "catalog": (Origin("10.0.0.5", 8001), Origin("10.0.0.6", 8001)),
        "default": (Origin("10.0.0.7", 80),),
    }
    cases = {
        "catalog=http://a:1": "'default' pool",
        "default=https://a:1": "only http://",
        "default=http://a:1/v1": "no path",
        "default=http://a:1;default=http://b:1": "given twice",
        "default=http://a:1,http://a:1": "twice",
        "Default=http://a:1": "lower-case",
        "default": "name=http://host:port",
        "default=http://a:notaport": "not a URL",
    }
    for text, message in cases.items():
        with pytest.raises(ValueError, match=message):
            parse_upstreams(text)
    with pytest.raises(ValidationError, match="unconfigured pool"):
        EdgeSettings(upstreams="default=http://a:1", routes="/v1/x=catalog")
    with pytest.raises(ValidationError, match="limit_min"):
        EdgeSettings(upstreams="default=http://a:1", limit_min=50, limit_initial=10)
    settings = EdgeSettings(upstreams="default=http://a:1;catalog=http://b:2")
    table = dict(settings.route_table)
    assert table["/v1/catalog"] == "catalog"
    assert table["/v1/recs"] == "default"  # a routed pool that is not configured


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REELSCALE_")}
    return subprocess.run(
        [sys.executable, "-m", "reelscale", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_refuses_edge_with_other_roles_and_explains_missing_settings() -> None:
    mixed = run_cli("serve", "--roles", "edge,catalog")
    assert mixed.returncode == 2
    assert "runs alone" in mixed.stderr
    missing = run_cli("serve", "--roles", "edge")
    assert missing.returncode == 2
    assert "REELSCALE_EDGE_UPSTREAMS" in missing.stderr
    bad = run_cli("serve", "--roles", "edge", REELSCALE_EDGE_UPSTREAMS="default=ftp://x")
    assert bad.returncode == 2
    assert "only http://" in bad.stderr
