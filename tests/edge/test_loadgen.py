"""The overload benchmark's open-loop generator against small real servers on loopback.

What it must get right whatever the server does: every scheduled request ends in exactly one
outcome (an answer, a timeout, a broken or refused connection), connections are reused only
after a complete answer, and a spoilt connection is never reused or leaked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from reelscale.edge.loadgen import (
    BROKEN,
    NO_CONNECTION,
    TIMED_OUT,
    Outcome,
    RequestKind,
    ResponseError,
    closed_loop,
    open_loop,
    parse_head,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
KINDS = (RequestKind("a", 1.0, "GET", "/a"),)


async def offer(port: int, **options: Any) -> list[Outcome]:
    """`open_loop` on loopback with the one kind of request these tests send."""
    return await open_loop(host="127.0.0.1", port=port, kinds=KINDS, **options)


async def serve(handler: Handler) -> AsyncIterator[int]:
    """A server on a free port; on the way out, its handlers finish or are cancelled."""
    handlers: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]
    if handlers:
        _, running = await asyncio.wait(handlers, timeout=1.0)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


@pytest.fixture
async def answering() -> AsyncIterator[tuple[int, list[int]]]:
    """Answers 200 to every request; counts connections."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async for port in serve(handler):
        yield port, connections


async def test_every_request_is_answered_on_reused_connections(
    answering: tuple[int, list[int]],
) -> None:
    port, connections = answering
    outcomes = await offer(
        port,
        rate_per_s=400,
        duration_s=0.5,
        measure_from_s=0.1,
        warm_connections=4,
        seed=1,
    )
    assert 100 < len(outcomes) < 250  # about 160 arrivals after the first 0.1 s
    assert {o.status for o in outcomes} == {200}
    assert all(o.latency_s >= o.send_lag_s >= 0 for o in outcomes)
    # One request at a time per connection; at 400/s on loopback a few connections do.
    assert len(connections) < 20


async def test_spinning_generator_sends_on_time(answering: tuple[int, list[int]]) -> None:
    port, _ = answering
    outcomes = await offer(
        port,
        rate_per_s=200,
        duration_s=0.3,
        spin_s=0.002,
        seed=2,
    )
    assert outcomes
    assert {o.status for o in outcomes} == {200}


async def test_a_server_that_never_answers_times_out_and_spoils_the_connection() -> None:
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()  # until the generator gives up and closes

    async for port in serve(silent):
        outcomes = await offer(
            port,
            rate_per_s=50,
            duration_s=0.2,
            timeout_s=0.1,
            warm_connections=2,
            seed=3,
        )
    assert outcomes
    assert {o.status for o in outcomes} == {TIMED_OUT}
    # A timed-out connection is never reused: one per request, plus the unused warm ones.
    assert len(connections) >= len(outcomes)


@pytest.mark.parametrize(
    "answer",
    [
        b"",  # the server closes the connection
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",  # no content-length
    ],
)
async def test_broken_answers_are_counted_as_broken(answer: bytes) -> None:
    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()

    async for port in serve(bad):
        outcomes = await offer(
            port,
            rate_per_s=50,
            duration_s=0.2,
            timeout_s=1.0,
            warm_connections=1,
            seed=4,
        )
    assert outcomes
    assert {o.status for o in outcomes} == {BROKEN}


async def test_a_full_pool_fails_requests_at_once() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(0.2)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async for port in serve(slow):
        outcomes = await offer(
            port,
            rate_per_s=100,
            duration_s=0.3,
            timeout_s=1.0,
            max_connections=1,
            warm_connections=1,
            seed=5,
        )
    statuses = [o.status for o in outcomes]
    assert statuses.count(200) >= 1
    assert statuses.count(NO_CONNECTION) >= 10  # about 30 arrivals, one connection
    assert set(statuses) <= {200, NO_CONNECTION}


async def test_a_closed_loop_keeps_every_client_busy(answering: tuple[int, list[int]]) -> None:
    port, connections = answering
    done, seconds = await closed_loop(
        host="127.0.0.1",
        port=port,
        kinds=KINDS,
        concurrency=4,
        duration_s=0.4,
        measure_from_s=0.1,
    )
    assert seconds == pytest.approx(0.3)
    assert done > 100  # loopback answers in well under a millisecond
    assert len(connections) == 4  # each client on its own kept-alive connection


def test_parse_head() -> None:
    assert parse_head(b"HTTP/1.1 503 Busy\r\nContent-Length: 12\r\nConnection: close") == (
        503,
        False,
        12,
    )
    for head in (b"HTTP/1.1 abc\r\ncontent-length: 0", b"HTTP/1.1 200 OK"):
        with pytest.raises(ResponseError):
            parse_head(head)
