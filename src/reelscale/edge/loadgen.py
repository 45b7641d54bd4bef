"""An open-loop HTTP/1.1 load generator on raw asyncio streams, for the overload benchmark.

Open loop: requests are sent on a schedule fixed in advance (Poisson arrivals), whatever the
server answers, as real clients do: a slow server does not slow the offered load down (a
closed loop would, and would hide the overload it is meant to create). Latency is measured
from each request's *scheduled* time, so a request the generator itself sent late is charged
for it (no coordinated omission).

Each connection carries one request at a time (keep-alive, no pipelining); a request takes
an idle connection or opens a new one, up to `max_connections`. Requests that find none are
counted as failed: a client with a bounded pool would have failed them too. A request not
answered by `timeout_s` after its scheduled time is failed and its connection closed.

httpx or aiohttp would cost several times the CPU per request; on a two-core machine the
generator must leave the origin its core.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class ResponseError(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and whether the connection may be reused; the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
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
    if length:
        await reader.readexactly(length)
    return int(parts[1]), keep_alive


@dataclass
class Pool:
    """Idle keep-alive connections to one server, opened on demand up to a bound."""

    host: str
    port: int
    max_connections: int
    idle: list[Connection] = field(default_factory=list)
    open: int = 0

    async def connect(self) -> Connection:
        self.open += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=65536)
        except BaseException:
            self.open -= 1
            raise
        return Connection(reader, writer)

    def take(self) -> Connection | None:
        return self.idle.pop() if self.idle else None

    def give_back(self, connection: Connection) -> None:
        self.idle.append(connection)

    def discard(self, connection: Connection) -> None:
        self.open -= 1
        connection.close()

    async def warm(self, count: int) -> None:
        connections = await asyncio.gather(*(self.connect() for _ in range(count)))
        self.idle.extend(connections)

    def close_all(self) -> None:
        for connection in self.idle:
            self.discard(connection)
        self.idle.clear()


async def send_one(pool: Pool, wire: bytes, deadline: float) -> int:
    """One request on a pooled connection: its status, or a client verdict."""
    connection = pool.take()
    if connection is None:
        if pool.open >= pool.max_connections:
            return NO_CONNECTION
        try:
            async with asyncio.timeout_at(deadline):
                connection = await pool.connect()
        except TimeoutError:
            return TIMED_OUT
        except OSError:
            return BROKEN
    try:
        async with asyncio.timeout_at(deadline):
            connection.writer.write(wire)
            status, keep_alive = await read_response(connection.reader)
    except TimeoutError:
        pool.discard(connection)  # a response may still come: the connection is spoilt
        return TIMED_OUT
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ResponseError):
        pool.discard(connection)
        return BROKEN
    if keep_alive:
        pool.give_back(connection)
    else:
        pool.discard(connection)
    return status


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
) -> list[Outcome]:
    """Offer `rate_per_s` for `duration_s`; outcomes of arrivals after `measure_from_s`."""
    schedule = poisson_schedule(
        rate_per_s=rate_per_s,
        duration_s=duration_s,
        weights=[kind.weight for kind in kinds],
        seed=seed,
    )
    wires = [kind.wire(f"{host}:{port}") for kind in kinds]
    pool = Pool(host, port, max_connections)
    await pool.warm(min(warm_connections, max_connections))
    outcomes: list[Outcome] = []
    running: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def fire(offset: float, kind: int) -> None:
        scheduled = start + offset
        lag = loop.time() - scheduled
        status = await send_one(pool, wires[kind], scheduled + timeout_s)
        if offset >= measure_from_s:
            outcomes.append(Outcome(kind, status, loop.time() - scheduled, lag))

    index = 0
    while index < len(schedule):
        now = loop.time()
        while index < len(schedule) and start + schedule[index][0] <= now:
            task = loop.create_task(fire(*schedule[index]))
            running.add(task)
            task.add_done_callback(running.discard)
            index += 1
        if index < len(schedule):
            await asyncio.sleep(max(0.0, start + schedule[index][0] - loop.time()))
    if running:
        await asyncio.wait(running, timeout=timeout_s + 1)
    pool.close_all()
    return outcomes


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
    """`concurrency` clients each sending the next request when the last returns.

    Returns (successful requests after `measure_from_s`, seconds measured): the server's
    throughput when it is kept saturated."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not a secret
    wires = [kind.wire(f"{host}:{port}") for kind in kinds]
    weights = [kind.weight for kind in kinds]
    pool = Pool(host, port, concurrency)
    await pool.warm(concurrency)
    started = time.monotonic()
    measure_from = started + measure_from_s
    until = started + duration_s
    done = 0

    async def client() -> None:
        nonlocal done
        loop = asyncio.get_running_loop()
        while time.monotonic() < until:
            kind = rng.choices(range(len(kinds)), weights)[0]
            status = await send_one(pool, wires[kind], loop.time() + 30)
            if 200 <= status < 300 and measure_from <= time.monotonic() <= until:
                done += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    pool.close_all()
    return done, until - measure_from
