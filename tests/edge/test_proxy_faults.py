"""Faults the edge proxy must absorb without hurting other clients, on real sockets.

Each test runs a real ProxyServer on loopback, provokes one fault (a slow or malicious
client, a hanging, resetting or babbling origin, a flood) and checks both that the fault
is answered as it should be and that a well-behaved client is served meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.edge.test_proxy import (
    Seen,
    garbage,
    hang,
    ok,
    origins,
    problem_of,
    raw_exchange,
    reset,
    running,
)


def parse_problem(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers["content-type"] == "application/problem+json"
    problem = orjson.loads(body[: int(headers["content-length"])])
    assert problem["status"] == status
    return status, headers, problem


@dataclass
class RawOutcome:
    sent: int  # bytes sent before the answer arrived (or sending failed)
    received: bytes
    answered_after_s: float  # from the first byte sent to the first byte of the answer


async def send_then_read(port: int, pieces: list[bytes], pause_s: float) -> RawOutcome:
    """Send pieces with pauses until the proxy answers or stops taking them; read it all.

    Raw sockets, read while sending: a stream whose write failed discards what it had
    received, and a client that keeps sending would not notice the answer."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    received = bytearray()
    answered = asyncio.Event()
    answered_at = 0.0

    async def read() -> None:
        nonlocal answered_at
        with contextlib.suppress(OSError):
            while chunk := await loop.sock_recv(sock, 65536):
                if not received:
                    answered_at = time.monotonic()
                    answered.set()
                received.extend(chunk)
        answered.set()

    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        started = time.monotonic()
        reading = asyncio.create_task(read())
        sent = 0
        with contextlib.suppress(OSError, TimeoutError):
            for piece in pieces:
                if answered.is_set():
                    break
                await asyncio.wait_for(loop.sock_sendall(sock, piece), 2)
                sent += len(piece)
                if pause_s:
                    await asyncio.sleep(pause_s)
        await asyncio.wait_for(reading, 10)
        return RawOutcome(sent, bytes(received), answered_at - started if received else -1.0)
    finally:
        sock.close()


async def timed_get(http: httpx.AsyncClient, path: str) -> tuple[int, float]:
    started = time.monotonic()
    response = await http.get(path)
    return response.status_code, time.monotonic() - started


# --------------------------------------------------------------------------- clients


async def test_slowloris_clients_are_timed_out_and_do_not_block_others() -> None:
    async with (
        origins(ok) as (default,),
        running(f"default={default.url}", header_timeout_s=0.6) as proxy,
    ):
        request = b"GET /v1/catalog/titles HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n\r\n"
        outcomes: list[RawOutcome] = []

        async def trickle() -> None:
            pieces = [bytes([byte]) for byte in request]
            outcomes.append(await send_then_read(proxy.port, pieces, 0.05))

        slow = [asyncio.create_task(trickle()) for _ in range(100)]
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=proxy.url) as http:
            served = [await timed_get(http, "/v1/catalog/titles") for _ in range(20)]
        await asyncio.gather(*slow)
    assert [status for status, _ in served] == [200] * 20
    assert max(elapsed for _, elapsed in served) < 0.5
    assert len(outcomes) == 100
    for outcome in outcomes:
        status, _, problem = parse_problem(outcome.received)
        assert status == 408
        assert "in time" in str(problem["detail"])
        # Answered at the header timeout, long before the trickle would have ended (2.8 s).
        assert 0.5 < outcome.answered_after_s < 1.5, outcome.answered_after_s
        assert outcome.sent < len(request)
    assert all(seen.headers.get("x-slow") is None for seen in default.seen)


async def test_huge_headers_get_431_and_are_not_held() -> None:
    async with origins(ok) as (default,), running(f"default={default.url}") as proxy:
        big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (40 * 1024) + b"\r\n\r\n"
        status, headers, _ = parse_problem(await raw_exchange(proxy.port, big))
        assert status == 431
        assert headers["connection"] == "close"
        many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n"
        assert parse_problem(await raw_exchange(proxy.port, many))[0] == 431
        # One endless header line: refused long before it ends, so nothing holds it whole.
        start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: "
        endless = await send_then_read(proxy.port, [start] + [b"b" * 65536] * 1024, 0.001)
        assert endless.received.startswith(b"HTTP/1.1 431 ")
        assert endless.sent < 4 * 1024 * 1024, endless.sent
        async with httpx.AsyncClient(base_url=proxy.url) as http:
            assert (await http.get("/still-fine")).status_code == 200
    assert [s.target for s in default.seen] == ["/still-fine"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        # Request smuggling: both framings at once.
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    ],
)
async def test_malformed_http_gets_400_and_a_close(request_bytes: bytes) -> None:
    async with origins(ok) as (default,), running(f"default={default.url}") as proxy:
        raw = await raw_exchange(proxy.port, request_bytes)
        status, headers, _ = parse_problem(raw)
        assert status == 400
        assert headers["connection"] == "close"
        async with httpx.AsyncClient(base_url=proxy.url) as http:
            assert (await http.get("/fine")).status_code == 200
    assert [s.target for s in default.seen] == ["/fine"]


async def test_websocket_upgrades_are_refused_not_tunnelled() -> None:
    async with origins(ok) as (default,), running(f"default={default.url}") as proxy:
        raw = await raw_exchange(
            proxy.port,
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
    assert parse_problem(raw)[0] == 501
    assert default.seen == []


# --------------------------------------------------------------------------- origins


async def test_a_hanging_origin_gets_504_after_the_timeout_and_others_are_served() -> None:
    async with origins(hang, ok) as (stuck, healthy):
        upstreams = f"catalog={stuck.url};default={healthy.url}"
        async with (
            running(upstreams, first_byte_timeout_s=0.5) as proxy,
            httpx.AsyncClient(base_url=proxy.url, timeout=10) as http,
        ):
            waiting = asyncio.create_task(timed_get(http, "/v1/catalog/titles"))
            await asyncio.sleep(0.1)
            others = [await timed_get(http, "/v1/recs/home") for _ in range(5)]
            hung_status, hung_after = await waiting
            response = await http.get("/v1/catalog/titles")
    assert hung_status == 504
    assert 0.45 < hung_after < 1.5
    assert response.status_code == 504
    assert "did not answer" in problem_of(response)["detail"]
    assert all(status == 200 and elapsed < 0.4 for status, elapsed in others)


async def test_a_resetting_origin_gets_502() -> None:
    async with (
        origins(reset) as (broken,),
        running(f"default={broken.url}") as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        response = await http.get("/v1/catalog/titles")
    assert response.status_code == 502
    assert "closed the connection" in problem_of(response)["detail"]


async def test_a_reset_is_retried_on_another_instance_when_idempotent_and_budgeted() -> None:
    async with (
        origins(reset, ok) as (broken, healthy),
        running(
            f"default={broken.url},{healthy.url}",
            retry_budget_ratio=1.0,
            eject_consecutive_failures=1000,
        ) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        gets = [(await http.get("/v1/catalog/titles")).status_code for _ in range(30)]
        keyed = [
            (await http.post("/v1/playback/sessions", headers={"Idempotency-Key": f"k{i}"}))
            for i in range(20)
        ]
        plain = [(await http.post("/v1/playback/sessions")).status_code for _ in range(30)]
    assert gets == [200] * 30  # every GET that met the broken instance went again
    assert [r.status_code for r in keyed] == [200] * 20
    assert broken.seen  # P2C did send some to the broken one
    # A POST without a key is never repeated: those that met the broken instance fail.
    assert 502 in plain
    posts_seen = [s for s in broken.seen + healthy.seen if s.method == "POST"]
    keyed_seen = [s for s in posts_seen if "idempotency-key" in s.headers]
    assert len(posts_seen) - len(keyed_seen) == 30  # each plain POST sent exactly once


async def test_retries_stay_within_the_budget() -> None:
    async with (
        origins(reset, ok) as (broken, healthy),
        running(
            f"default={broken.url},{healthy.url}",
            retry_budget_ratio=0.1,
            eject_consecutive_failures=1000,
        ) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        statuses = [(await http.get("/x")).status_code for _ in range(100)]
        metrics = (await http.get("/metrics")).text
    retries = len(broken.seen) + len(healthy.seen) - 100
    assert 0 < retries <= 10  # at most a tenth of the 100 requests
    assert f'reelscale_edge_proxy_retries_total{{pool="default"}} {float(retries)}' in metrics
    # Every attempt that reached the healthy instance answered a request; the rest failed.
    assert statuses.count(200) == len(healthy.seen)
    assert statuses.count(502) == 100 - len(healthy.seen)


async def test_an_origin_sending_garbage_gets_502() -> None:
    async with (
        origins(garbage) as (babbling,),
        running(f"default={babbling.url}") as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        response = await http.get("/v1/catalog/titles")
        again = await http.get("/v1/catalog/titles")
    assert response.status_code == again.status_code == 502
    assert "invalid response" in problem_of(response)["detail"]
    assert len(babbling.seen) == 2  # garbage is a response byte: never retried


async def test_an_origin_that_dies_mid_response_cuts_the_client_short() -> None:
    async def half(_seen: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()
        return False

    async with origins(half) as (dying,), running(f"default={dying.url}") as proxy:
        raw = await raw_exchange(proxy.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert raw.endswith(b"partial")  # not 1000 bytes: the client sees the truncation
    assert len(dying.seen) == 1


# --------------------------------------------------------------------------- floods


async def test_a_flood_from_one_address_is_throttled_while_others_are_served() -> None:
    async with (
        origins(ok) as (default,),
        running(f"default={default.url}", address_rate_per_s=5, address_burst=10) as proxy,
    ):
        flood = httpx.AsyncClient(base_url=proxy.url)
        other = httpx.AsyncClient(
            base_url=proxy.url, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        )
        async with flood, other:
            responses = await asyncio.gather(*(flood.get("/v1/catalog/x") for _ in range(60)))
            bystander = [(await other.get("/v1/catalog/y")).status_code for _ in range(5)]
    statuses = [r.status_code for r in responses]
    assert statuses.count(429) >= 45
    assert statuses.count(200) <= 15
    throttled = next(r for r in responses if r.status_code == 429)
    assert int(throttled.headers["retry-after"]) >= 1
    assert "Too many requests" in problem_of(throttled)["detail"]
    assert bystander == [200] * 5
    assert {s.headers["x-forwarded-for"] for s in default.seen} == {"127.0.0.1", "127.0.0.2"}
