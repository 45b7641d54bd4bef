"""Functions benchmark: put-to-handler latency and consume throughput through the runtime.

    functions_bench(backend="embedded"|"nats") -> e2e_ms_p50/p90/p99/max, delivered, sent,
                                                  cold/warm starts, function_events_per_s

Latency is open loop, as in `events.bench`: events are due at a steady `rate` whether or
not the runtime keeps up, put every `TICK_S` in one batch of whatever has come due, and
each is timed from when it was due to when the function's handler sees it (the event
carries its index i, due at the start time + i / rate). A stall therefore shows up in
the numbers instead of slowing the producer down. Before the clock starts the function
must have read from every shard; then `warmup_s` of events are delivered but not
counted. Every event sent must come back at least once (`delivered == sent`). `put_ms_*`
is the store's share: due time to the put's acknowledgement, so `e2e_ms - put_ms` is
roughly what reading and the runtime add.

Throughput puts `throughput_events` first, then starts a runtime whose function does
nothing, and times from its start until every one of them was handled.

Each phase runs on a fresh, uniquely named stream; the streams, and the functions'
dead-letter streams, are deleted afterwards so a NATS server does not collect them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry

from reelscale.core.events import CloudEvent
from reelscale.events.backends import event_store_from_url
from reelscale.events.records import TRIM_HORIZON, PutEntry, Record
from reelscale.events.store import EventStore
from reelscale.functions.registry import FunctionRegistry
from reelscale.functions.runtime import FunctionsRuntime
from reelscale.functions.schemas import FunctionStatus
from reelscale.functions.spec import DEAD_LETTER_PREFIX, BatchFailure, derived_name

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
TARGET_P99_MS = 20.0  # the target; Kinesis ~200 ms, enhanced fan-out ~70 ms
TICK_S = 0.001  # the producer puts what has come due about this often
KEYS = 1000  # partition keys the events are spread over
READY_TIMEOUT_S = 30.0
PUT_BATCH = 1000  # events per put when filling the throughput stream


def functions_bench(backend: str = "embedded", **options: Any) -> dict[str, Any]:
    """Put-to-handler latency at `rate`/s for `seconds`, then consume throughput (the
    options are `functions_bench_async`'s)."""
    return asyncio.run(functions_bench_async(backend, **options))


async def functions_bench_async(
    backend: str = "embedded",
    *,
    rate: int = 5000,
    seconds: float = 10,
    shards: int = 4,
    batch_window_s: float = 0.0,
    batch_size: int = 100,
    parallelization: int = 1,
    warmup_s: float = 1.0,
    throughput_events: int = 100_000,
    throughput_batch_size: int = 1000,
    nats_url: str | None = None,
    directory: Path | None = None,
    drain_timeout_s: float = 30.0,
) -> dict[str, Any]:
    if rate < 1 or seconds <= 0 or warmup_s < 0 or shards < 1 or throughput_events < 0:
        raise ValueError("rate, seconds and shards must be positive; warmup_s, events >= 0")
    settings: dict[str, Any] = {
        "shards": shards,
        "batch_size": batch_size,
        "batch_window_s": batch_window_s,
        "parallelization": parallelization,
    }
    async with _open_store(backend, nats_url, directory) as store:
        latency = await _with_stream(
            store,
            shards,
            lambda stream: _latency_phase(
                store,
                stream,
                rate=rate,
                seconds=seconds,
                warmup_s=warmup_s,
                drain_timeout_s=drain_timeout_s,
                options=settings,
            ),
        )
        throughput: dict[str, Any] = {"function_events": 0, "function_events_per_s": None}
        if throughput_events:
            throughput = await _with_stream(
                store,
                shards,
                lambda stream: _throughput_phase(
                    store,
                    stream,
                    events=throughput_events,
                    drain_timeout_s=drain_timeout_s,
                    options=settings | {"batch_size": throughput_batch_size},
                ),
            )
    p99 = latency["e2e_ms_p99"]
    met = (
        p99 is not None
        and p99 <= TARGET_P99_MS
        and latency["delivered"] == latency["sent"]
        and latency["put_errors"] == 0
    )
    return {
        "backend": backend,
        "rate": rate,
        "seconds": seconds,
        "warmup_s": warmup_s,
        **settings,
        **latency,
        **throughput,
        "throughput_batch_size": throughput_batch_size,
        "target_p99_ms": TARGET_P99_MS,
        "met": met,
    }


# -- the store and its streams ----------------------------------------------------------


@contextlib.asynccontextmanager
async def _open_store(
    backend: str, nats_url: str | None, directory: Path | None
) -> AsyncIterator[EventStore]:
    if backend == "nats":
        url = nats_url or DEFAULT_NATS_URL
        if urlsplit(url).scheme not in ("nats", "tls"):
            raise ValueError(f"--nats-url must be a nats:// or tls:// URL, got {url!r}")
    elif backend == "embedded":
        url = None
    else:
        raise ValueError(f"unknown backend {backend!r}: embedded or nats")
    with tempfile.TemporaryDirectory(prefix="reelscale-fnbench-", dir=directory) as tmp:
        store = event_store_from_url(url, data_dir=Path(tmp))  # NATS leaves tmp unused
        await store.start()
        try:
            yield store
        finally:
            await store.stop()


async def _with_stream(
    store: EventStore, shards: int, phase: Callable[[str], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run `phase(stream)` on a new stream; delete it and its dead letters afterwards.

    The phase's function is named after its stream, so its dead-letter stream is known.
    """
    stream = f"fnbench-{uuid.uuid4().hex[:10]}"
    await store.create_stream(stream, shards=shards)
    try:
        result: dict[str, Any] = await phase(stream)
    finally:
        for name in (stream, derived_name(DEAD_LETTER_PREFIX, stream)):
            with contextlib.suppress(Exception):
                await store.delete_stream(name)
    return result


_ids = itertools.count()
_RUN = uuid.uuid4().hex[:12]


def _event(data: dict[str, Any], now: datetime) -> CloudEvent:
    # A unique id without a uuid4 per event: on some machines the random bytes cost more
    # than the rest of building the event, and the producer shares the runtime's loop.
    return CloudEvent(
        id=f"{_RUN}-{next(_ids)}",
        source="reelscale/bench",
        type="bench.function",
        time=now,
        data=data,
    )


@contextlib.asynccontextmanager
async def _running(
    store: EventStore, registry: FunctionRegistry
) -> AsyncIterator[FunctionsRuntime]:
    runtime = FunctionsRuntime(store, registry, registry_metrics=CollectorRegistry())
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


# -- latency ----------------------------------------------------------------------------


async def _latency_phase(
    store: EventStore,
    stream: str,
    *,
    rate: int,
    seconds: float,
    warmup_s: float,
    drain_timeout_s: float,
    options: dict[str, Any],
) -> dict[str, Any]:
    shards: int = options["shards"]
    warmup = int(rate * warmup_s)
    total = warmup + max(1, int(rate * seconds))
    seen = bytearray(total)
    latencies: list[float] = []
    ready_shards: set[int] = set()
    counts = {"delivered": 0, "duplicates": 0}
    all_in = asyncio.Event()
    ready = asyncio.Event()  # the handler has seen a probe from every shard
    origin = 0.0  # perf_counter time event 0 is due; set just before the first put

    async def handle(batch: list[Record]) -> BatchFailure | None:
        now = time.perf_counter()
        for record in batch:
            data = record.event.data
            i = data.get("i")
            if i is None:
                ready_shards.add(record.shard)
                if len(ready_shards) >= shards:
                    ready.set()
                continue
            if seen[i]:
                counts["duplicates"] += 1
                continue
            seen[i] = 1
            counts["delivered"] += 1
            if i >= warmup:
                latencies.append((now - (origin + i / rate)) * 1000)
        if counts["delivered"] >= total:
            all_in.set()
        return None

    registry = FunctionRegistry()
    # Read from the start of a fresh stream: nothing put before the readers open is lost.
    registry.function(stream, stream=stream, start=TRIM_HORIZON, **options)(handle)
    async with _running(store, registry) as runtime:
        await _until_reading(store, stream, shards, ready_shards, ready)
        origin = time.perf_counter() + 0.01
        sent, put_errors, put_ms = await _produce(store, stream, total, rate, origin, warmup)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), drain_timeout_s)
        status = await runtime.function_status(stream)
    return {
        "sent": sent,
        "delivered": counts["delivered"],
        "duplicates": counts["duplicates"],
        "put_errors": put_errors,
        "measured": len(latencies),
        **_percentiles("e2e_ms", latencies),
        **_percentiles("put_ms", put_ms),
        **_starts(status),
    }


async def _until_reading(
    store: EventStore, stream: str, shards: int, ready_shards: set[int], ready: asyncio.Event
) -> None:
    """Put probe events until the handler has seen one from every shard."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.is_set():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the function read {len(ready_shards)} of {shards} shards")
        now = datetime.now(UTC)
        probes = [PutEntry(_event({"probe": k}, now), f"probe-{k}") for k in range(8 * shards)]
        await store.put_batch(stream, probes)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 0.2)


async def _produce(
    store: EventStore, stream: str, total: int, rate: int, origin: float, warmup: int
) -> tuple[int, int, list[float]]:
    """Put event i at `origin + i / rate` (in a batch per tick), without waiting for puts.

    Returns how many events were acknowledged, how many puts failed, and how long each
    counted event took from its due time to its acknowledgement (ms): the store's part
    of the end-to-end latency.
    """
    put_ms: list[float] = []
    puts: set[asyncio.Task[list[Record]]] = set()
    counts = {"sent": 0, "errors": 0}

    def done(task: asyncio.Task[list[Record]], first: int, until: int) -> None:
        # Counted and let go at once: holding on to the records would grow the heap that
        # every garbage collection walks, and time the benchmark's garbage, not the runtime.
        now = time.perf_counter()
        puts.discard(task)
        if task.cancelled() or task.exception() is not None:
            counts["errors"] += 1
            return
        counts["sent"] += len(task.result())
        put_ms.extend((now - origin - i / rate) * 1000 for i in range(max(first, warmup), until))

    due = 0
    while due < total:
        delay = origin - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        until = min(total, int((time.perf_counter() - origin) * rate) + 1)
        if until > due:
            now = datetime.now(UTC)
            entries = [
                PutEntry(_event({"i": i}, now), f"member-{i % KEYS}") for i in range(due, until)
            ]
            task = asyncio.create_task(store.put_batch(stream, entries))
            puts.add(task)
            task.add_done_callback(functools.partial(done, first=due, until=until))
            due = until
        await asyncio.sleep(TICK_S)
    if puts:
        await asyncio.wait(puts)
    return counts["sent"], counts["errors"], put_ms


def _percentiles(prefix: str, latencies: list[float]) -> dict[str, float | None]:
    names = tuple(f"{prefix}_{cut}" for cut in ("p50", "p90", "p99", "max"))
    if len(latencies) < 2:
        return dict.fromkeys(names)
    cuts = statistics.quantiles(latencies, n=100)
    values = (statistics.median(latencies), cuts[89], cuts[98], max(latencies))
    return {name: round(value, 3) for name, value in zip(names, values, strict=True)}


def _starts(status: FunctionStatus) -> dict[str, int]:
    return {
        "invocations": status.invocations,
        "cold_starts": status.cold_starts,
        "warm_starts": status.warm_starts,
        "errors": status.errors,
    }


# -- throughput -------------------------------------------------------------------------


async def _throughput_phase(
    store: EventStore,
    stream: str,
    *,
    events: int,
    drain_timeout_s: float,
    options: dict[str, Any],
) -> dict[str, Any]:
    now = datetime.now(UTC)
    for first in range(0, events, PUT_BATCH):
        entries = [
            PutEntry(_event({"n": i}, now), f"member-{i % KEYS}")
            for i in range(first, min(events, first + PUT_BATCH))
        ]
        await store.put_batch(stream, entries)
    handled = 0
    all_in = asyncio.Event()

    async def handle(batch: list[Record]) -> BatchFailure | None:
        nonlocal handled
        handled += len(batch)
        if handled >= events:
            all_in.set()
        return None

    registry = FunctionRegistry()
    registry.function(stream, stream=stream, start=TRIM_HORIZON, **options)(handle)
    started = time.perf_counter()
    async with _running(store, registry):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), drain_timeout_s)
        elapsed = time.perf_counter() - started
    return {"function_events": handled, "function_events_per_s": round(handled / elapsed)}
