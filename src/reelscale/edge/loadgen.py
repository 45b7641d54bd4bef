"""An HTTP/1.1 load generator on raw asyncio protocols, for the overload benchmark.

Open loop: requests are sent on a schedule fixed in advance (Poisson arrivals), whatever the
server answers, as real clients do: a slow server does not slow the offered load down (a
closed loop would, and would hide the overload it is meant to create). Latency is measured
from each request's *scheduled* time, so a request the generator itself sent late is charged
for it (no coordinated omission).

Each connection carries one request at a time (keep-alive, no pipelining); a request takes
an idle connection or opens a new one, up to `max_connections`. Requests that find none are
counted as failed: a client with a bounded pool would have failed them too. A request not
answered by `timeout_s` after its scheduled time is failed and its connection closed.

`closed_loop` drives the same connections the other way, each sending its next request when
the last has ended, to measure the server's capacity.

httpx or aiohttp would cost several times the CPU per request; on a two-core machine the
generator must leave the origin its core.
"""

from __future__ import annotations

import asyncio
import gc
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Statuses the benchmark sorts outcomes by; 0 and below are the client's own verdicts.
TIMED_OUT = 0
NO_CONNECTION = -1
BROKEN = -2


@dataclass(frozen=True)
class RequestKind:
    """One kind of request in the mix: its class label, weight and wire bytes."""

    label: str
    weight: float
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()

    def wire(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"host: {host}", "content-length: 0"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Outcome:
    """What happened to one request: its kind index, status (or a client verdict), latency."""

    kind: int
    status: int
    latency_s: float
    send_lag_s: float  # how late the generator started it: its own scheduling delay


class ResponseError(Exception):
    pass


def poisson_schedule(
    *, rate_per_s: float, duration_s: float, weights: Sequence[float], seed: int
) -> list[tuple[float, int]]:
    """(offset in seconds, kind index) for every arrival, exponential gaps at `rate_per_s`."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    kinds = range(len(weights))
    arrivals: list[tuple[float, int]] = []
    at = rng.expovariate(rate_per_s)
    while at < duration_s:
        arrivals.append((at, rng.choices(kinds, weights)[0]))
        at += rng.expovariate(rate_per_s)
    return arrivals


class _Client(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time.

    The response is parsed in `data_received` and reported from there, timed at that moment:
    the earliest point user space sees it. (Reading through a StreamReader would wake a task
    on a later turn of the loop, and a busy generator would charge its own delay to the
    server.)"""

    def __init__(self, run: _OpenLoop) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending: _Pending | None = None
        self.counted = True  # in the generator's count of open connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        at = self.run.loop.time()
        self.buffer += data
        if self.pending is None:
            self.run.discard(self)  # bytes nobody asked for: the connection is spoilt
            return
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        try:
            status, keep_alive, length = parse_head(bytes(self.buffer[:head_end]))
        except ResponseError:
            self.run.complete(self, BROKEN, keep_alive=False, at=at)
            return
        if len(self.buffer) < head_end + 4 + length:
            return
        del self.buffer[: head_end + 4 + length]
        self.run.complete(self, status, keep_alive=keep_alive and not self.buffer, at=at)

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost(self)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


@dataclass(slots=True)
class _Pending:
    kind: int
    scheduled: float
    sent: float
    deadline: float
    measured: bool


def parse_head(head: bytes) -> tuple[int, bool, int]:
    """Status, whether the connection may be reused, and the body's length."""
    status_line, _, rest = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ResponseError(f"bad status line {status_line!r}")
    length = None
    keep_alive = True
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
        elif name == b"transfer-encoding":
            raise ResponseError("chunked responses are not expected from the origin")
    if length is None:
        raise ResponseError("a response without content-length")
    return int(parts[1]), keep_alive, length


class _OpenLoop:
    """The state of one open-loop run: the connections and the outcomes so far."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        wires: Sequence[bytes],
        timeout_s: float,
        max_connections: int,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.wires = wires
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.idle: set[_Client] = set()
        self.busy: set[_Client] = set()
        self.open = 0
        self.connecting: set[asyncio.Task[None]] = set()
        self.outcomes: list[Outcome] = []
        # Called (on the loop's next turn, when the connection is back in the pool) after
        # each request ends, whatever its outcome: the closed loop sends its next from it.
        self.after_each: Callable[[], None] | None = None

    async def connect(self) -> _Client:
        self.open += 1
        try:
            _, client = await self.loop.create_connection(
                lambda: _Client(self), self.host, self.port
            )
        except BaseException:
            self.open -= 1
            raise
        return client

    async def warm(self, count: int) -> None:
        self.idle.update(await asyncio.gather(*(self.connect() for _ in range(count))))

    def fire(self, kind: int, scheduled: float, *, measured: bool) -> None:
        """Send one request now: on an idle connection, or on a new one if allowed."""
        now = self.loop.time()
        pending = _Pending(kind, scheduled, now, scheduled + self.timeout_s, measured)
        if self.idle:
            self.send(self.idle.pop(), pending)
        elif self.open >= self.max_connections:
            self.record(pending, NO_CONNECTION, now)
        else:
            task = self.loop.create_task(self.connect_and_send(pending))
            self.connecting.add(task)
            task.add_done_callback(self.connecting.discard)

    async def connect_and_send(self, pending: _Pending) -> None:
        try:
            async with asyncio.timeout_at(pending.deadline):
                client = await self.connect()
        except TimeoutError:
            self.record(pending, TIMED_OUT, self.loop.time())
            return
        except OSError:
            self.record(pending, BROKEN, self.loop.time())
            return
        pending.sent = self.loop.time()
        self.send(client, pending)

    def send(self, client: _Client, pending: _Pending) -> None:
        assert client.transport is not None
        client.pending = pending
        self.busy.add(client)
        client.transport.write(self.wires[pending.kind])

    def complete(self, client: _Client, status: int, *, keep_alive: bool, at: float) -> None:
        pending = client.pending
        client.pending = None
        self.busy.discard(client)
        if pending is not None:
            self.record(pending, status, at)
        if keep_alive and client.transport is not None and not client.transport.is_closing():
            self.idle.add(client)
        else:
            self.discard(client)

    def lost(self, client: _Client) -> None:
        if client.pending is not None:
            self.complete(client, BROKEN, keep_alive=False, at=self.loop.time())
        self.discard(client)

    def discard(self, client: _Client) -> None:
        """Close a connection (if it is not closed yet) and forget it, once."""
        client.pending = None
        self.busy.discard(client)
        self.idle.discard(client)
        if client.counted:
            client.counted = False
            self.open -= 1
        client.close()

    def record(self, pending: _Pending, status: int, at: float) -> None:
        if self.after_each is not None:
            self.loop.call_soon(self.after_each)
        if pending.measured:
            self.outcomes.append(
                Outcome(
                    pending.kind,
                    status,
                    at - pending.scheduled,
                    pending.sent - pending.scheduled,
                )
            )

    def expire(self) -> None:
        """Fail every request past its deadline; its connection is spoilt (a late answer)."""
        now = self.loop.time()
        for client in [c for c in self.busy if c.pending and c.pending.deadline <= now]:
            assert client.pending is not None
            self.record(client.pending, TIMED_OUT, now)
            self.discard(client)

    def close_all(self) -> None:
        for client in [*self.idle, *self.busy]:
            self.discard(client)
        self.idle.clear()


async def open_loop(
    *,
    host: str,
    port: int,
    kinds: Sequence[RequestKind],
    rate_per_s: float,
    duration_s: float,
    measure_from_s: float = 0.0,
    timeout_s: float = 2.0,
    max_connections: int = 2000,
    warm_connections: int = 64,
    seed: int = 0,
    spin_s: float = 0.0,
) -> list[Outcome]:
    """Offer `rate_per_s` for `duration_s`; outcomes of arrivals after `measure_from_s`.

    With `spin_s`, the generator polls instead of sleeping for the last `spin_s` before each
    send (the loop keeps running, with zero timeouts, so answers are read as they come):
    epoll's timeouts are whole milliseconds, so a sleeping generator sends up to a
    millisecond late and reads late too. Spinning burns the generator's CPU, so it is for
    a generator with a core of its own.

    Requests are written synchronously as they fall due (no task per request) and answers
    are timed where they are parsed, so the generator adds as little as it can to what it
    measures; `Outcome.send_lag_s` says how late it was in sending."""
    schedule = poisson_schedule(
        rate_per_s=rate_per_s,
        duration_s=duration_s,
        weights=[kind.weight for kind in kinds],
        seed=seed,
    )
    run = _OpenLoop(
        host=host,
        port=port,
        wires=[kind.wire(f"{host}:{port}") for kind in kinds],
        timeout_s=timeout_s,
        max_connections=max_connections,
    )
    await run.warm(min(warm_connections, max_connections))
    # No garbage collection while measuring: a collection pauses the generator for
    # milliseconds, and every answer that arrives meanwhile would be charged for it. The
    # run allocates a few megabytes at most; collecting waits until it is over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await _drive(
            run, schedule, measure_from_s=measure_from_s, timeout_s=timeout_s, spin_s=spin_s
        )
    finally:
        if collecting:
            gc.enable()


async def _drive(
    run: _OpenLoop,
    schedule: list[tuple[float, int]],
    *,
    measure_from_s: float,
    timeout_s: float,
    spin_s: float,
) -> list[Outcome]:
    loop = run.loop
    start = loop.time() + 0.05
    next_sweep = start
    index = 0
    while index < len(schedule):
        now = loop.time()
        while index < len(schedule) and start + schedule[index][0] <= now:
            offset, kind = schedule[index]
            run.fire(kind, start + offset, measured=offset >= measure_from_s)
            index += 1
        if now >= next_sweep:
            run.expire()
            next_sweep = now + 0.01
        if index < len(schedule):
            wait = min(start + schedule[index][0], next_sweep) - now
            await asyncio.sleep(wait - spin_s if wait > spin_s else 0.0)
    deadline = loop.time() + timeout_s + 1
    while (run.busy or run.connecting) and loop.time() < deadline:
        run.expire()
        await asyncio.sleep(0.01)
    for task in run.connecting:
        task.cancel()
    run.close_all()
    return run.outcomes


async def closed_loop(
    *,
    host: str,
    port: int,
    kinds: Sequence[RequestKind],
    concurrency: int,
    duration_s: float,
    measure_from_s: float,
    seed: int = 0,
) -> tuple[int, float]:
    """`concurrency` clients each sending the next request when the last has ended.

    Returns (successful requests sent after `measure_from_s`, seconds measured): the
    server's throughput when it is kept saturated."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not a secret
    weights = [kind.weight for kind in kinds]
    run = _OpenLoop(
        host=host,
        port=port,
        wires=[kind.wire(f"{host}:{port}") for kind in kinds],
        timeout_s=30.0,
        max_connections=concurrency,
    )
    await run.warm(concurrency)
    loop = run.loop
    started = loop.time()
    measure_from, until = started + measure_from_s, started + duration_s

    def send_next() -> None:
        now = loop.time()
        if now < until:
            kind = rng.choices(range(len(kinds)), weights)[0]
            run.fire(kind, now, measured=now >= measure_from)

    run.after_each = send_next
    for _ in range(concurrency):
        send_next()
    while loop.time() < until or run.busy or run.connecting:
        run.expire()
        await asyncio.sleep(0.01)
    run.close_all()
    done = sum(1 for outcome in run.outcomes if 200 <= outcome.status < 300)
    # In a steady state as many requests sent before the window end inside it as were
    # sent inside it and end after it: sent-in-window over the window is the throughput.
    return done, until - measure_from
