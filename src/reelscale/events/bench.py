"""Stream benchmarks, as plain functions that return the numbers (the CLI prints them).

    stream(backend="embedded"|"nats") -> put_events_per_s, e2e_ms_p50, e2e_ms_p99,
                                          consume_events_per_s
    crash(kills=200)                   -> kills, acked, lost, corrupt

Put throughput counts only acknowledged (fsynced) events, put in batches by a few
concurrent producers; the events are built before the clock starts. With `one_core`
the process is pinned to one CPU while it puts, fsync thread included. Latency is open
loop: events are due at a steady rate whether or not earlier puts have returned, and
each is timed from when it was due to when a consumer's handler sees it, so a stall
shows up in the numbers instead of slowing the producer down. The first second is a
warm-up and is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reelscale.core.events import CloudEvent
from reelscale.events.consumer import GroupConsumer
from reelscale.events.embedded import EmbeddedEventStore
from reelscale.events.embedded.frames import CorruptLog
from reelscale.events.records import PutEntry, Record, StartAt
from reelscale.events.store import EventStore

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


# -- stream ----------------------------------------------------------------------------


def stream(
    backend: str = "embedded",
    *,
    url: str | None = None,
    directory: Path | None = None,
    events: int = 300_000,
    batch: int = 1000,
    producers: int = 4,
    shards: int = 4,
    rate: int = 5000,
    latency_s: float = 5.0,
    warmup_s: float = 1.0,
    one_core: bool = True,
) -> dict[str, float]:
    """Durable put throughput, put-to-handler latency at `rate`/s, consume throughput."""
    return asyncio.run(
        stream_async(
            backend,
            url=url,
            directory=directory,
            events=events,
            batch=batch,
            producers=producers,
            shards=shards,
            rate=rate,
            latency_s=latency_s,
            warmup_s=warmup_s,
            one_core=one_core,
        )
    )


async def stream_async(
    backend: str = "embedded",
    *,
    url: str | None = None,
    directory: Path | None = None,
    events: int = 300_000,
    batch: int = 1000,
    producers: int = 4,
    shards: int = 4,
    rate: int = 5000,
    latency_s: float = 5.0,
    warmup_s: float = 1.0,
    one_core: bool = True,
) -> dict[str, float]:
    async with _store(backend, url, directory) as store:
        names = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(2)]
        try:
            # Latency first, on its own stream, before the throughput runs leave a large
            # heap behind: it measures the stream, not a collection of benchmark garbage.
            await store.create_stream(names[0], shards=shards)
            p50, p99 = await _latency(store, names[0], rate, latency_s, warmup_s)
            await store.create_stream(names[1], shards=shards)
            with _pinned(one_core):
                put_rate = await _put_throughput(store, names[1], events, batch, producers)
            consume_rate = await _consume_throughput(store, names[1], events)
        finally:
            for name in names:
                with contextlib.suppress(Exception):
                    await store.delete_stream(name)
    return {
        "put_events_per_s": round(put_rate),
        "e2e_ms_p50": round(p50, 3),
        "e2e_ms_p99": round(p99, 3),
        "consume_events_per_s": round(consume_rate),
    }


@contextlib.asynccontextmanager
async def _store(
    backend: str, url: str | None, directory: Path | None
) -> AsyncIterator[EventStore]:
    if backend == "nats":
        from reelscale.events.nats import NatsEventStore

        store: EventStore = NatsEventStore(url or DEFAULT_NATS_URL)
        await store.start()
        try:
            yield store
        finally:
            await store.stop()
        return
    if backend != "embedded":
        raise ValueError(f"unknown backend {backend!r}: embedded or nats")
    with tempfile.TemporaryDirectory(prefix="reelscale-bench-", dir=directory) as tmp:
        store = EmbeddedEventStore(Path(tmp))
        await store.start()
        try:
            yield store
        finally:
            await store.stop()


@contextlib.contextmanager
def _pinned(enabled: bool) -> Iterator[None]:
    if not enabled or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _pool(size: int, keys: int = 1000) -> list[PutEntry]:
    now = datetime.now(UTC)
    return [
        PutEntry(
            CloudEvent(
                id=uuid.uuid4().hex,
                source="reelscale/bench",
                type="playback.heartbeat",
                time=now,
                subject=f"member-{i % keys}",
                data={"title": f"title-{i % 97}", "position_s": i * 0.5, "bitrate_kbps": 3000},
            ),
            f"member-{i % keys}",
        )
        for i in range(size)
    ]


async def _put_throughput(
    store: EventStore, name: str, events: int, batch: int, producers: int
) -> float:
    pool = _pool(20_000)
    await store.put_batch(name, pool[:batch])  # warm: files open, first fsync paid
    sent = 0

    async def produce(offset: int) -> None:
        nonlocal sent
        while sent < events:
            sent += batch
            start = offset % (len(pool) - batch)
            await store.put_batch(name, pool[start : start + batch])
            offset += batch * producers

    started = time.perf_counter()
    await asyncio.gather(*(produce(p * batch) for p in range(producers)))
    return sent / (time.perf_counter() - started)


async def _consume_throughput(store: EventStore, name: str, events: int) -> float:
    consumer = GroupConsumer(store, name, group="bench-consume")
    got = 0
    started = time.perf_counter()
    try:
        while got < events:
            records = await consumer.poll(max_records=2000)
            if not records and not consumer.readers:
                break
            got += len(records)
    finally:
        await consumer.close()
    return got / (time.perf_counter() - started)


async def _latency(
    store: EventStore, name: str, rate: int, seconds: float, warmup_s: float = 1.0
) -> tuple[float, float]:
    """p50 and p99 (ms) from due time to handler, after `warmup_s` not counted."""
    warmup = int(rate * warmup_s)
    total = int(rate * seconds)
    latencies: list[float] = []
    done = asyncio.Event()
    stop = asyncio.Event()

    async def handle(records: list[Record]) -> None:
        now = time.perf_counter()
        for record in records:
            if record.event.type == "bench.latency" and record.event.data["counted"]:
                latencies.append((now - record.event.data["due"]) * 1000)
        if len(latencies) >= total:
            done.set()

    consumer = GroupConsumer(store, name, group="bench-latency", start=StartAt.latest())
    await consumer.refresh()  # positioned at the tail before the first put
    runner = asyncio.create_task(consumer.run(handle, stop=stop, max_records=1000, wait_s=0.5))
    now = datetime.now(UTC)
    puts: set[asyncio.Task[Record]] = set()
    start = time.perf_counter() + 0.05
    for i in range(warmup + total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        event = CloudEvent(
            id=uuid.uuid4().hex,
            source="bench",
            type="bench.latency",
            time=now,
            data={"due": due, "counted": i >= warmup},
        )
        task = asyncio.create_task(store.put(name, event, partition_key=f"member-{i % 1000}"))
        puts.add(task)
        task.add_done_callback(puts.discard)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 30)
    stop.set()
    await runner
    await consumer.close()
    if not latencies:
        return float("nan"), float("nan")
    cuts = statistics.quantiles(latencies, n=100)
    return statistics.median(latencies), cuts[98]


# -- crash -----------------------------------------------------------------------------


def crash(*, kills: int = 200, directory: Path | None = None, seed: int = 0) -> dict[str, int]:
    """SIGKILL a writer at random moments; count acknowledged records lost or corrupt."""
    return asyncio.run(crash_async(kills=kills, directory=directory, seed=seed))


async def crash_async(
    *, kills: int = 200, directory: Path | None = None, seed: int = 0, max_alive_s: float = 0.4
) -> dict[str, int]:
    rng = random.Random(seed)  # noqa: S311 - kill moments, seeded to be repeatable
    totals = {"kills": 0, "acked": 0, "lost": 0, "corrupt": 0, "torn_tails_repaired": 0}
    with tempfile.TemporaryDirectory(prefix="reelscale-crash-", dir=directory) as tmp:
        root = Path(tmp)
        for run in range(kills):
            acked = await _run_and_kill(root, seed * 100_000 + run, rng.uniform(0.0, max_alive_s))
            totals["kills"] += 1
            totals["acked"] += len(acked)
            lost, corrupt, repaired = await _verify(root, acked)
            totals["lost"] += lost
            totals["corrupt"] += corrupt
            totals["torn_tails_repaired"] += repaired
    return totals


async def _run_and_kill(root: Path, run: int, alive_s: float) -> dict[tuple[int, int], str]:
    """Start a writer, kill it after `alive_s`, return what it reported as acknowledged."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reelscale.events.crash_writer",
        str(root),
        str(run),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    ready = await asyncio.wait_for(process.stdout.readline(), 60)
    if ready != b"ready\n":
        process.kill()
        await process.wait()
        raise RuntimeError(f"crash writer did not start: {ready!r}")
    lines: list[bytes] = []

    async def collect() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            lines.append(line)

    collector = asyncio.create_task(collect())
    await asyncio.sleep(alive_s)
    process.kill()  # SIGKILL: no cleanup, no flush, mid-write or mid-fsync
    await process.wait()
    await collector  # what was in the pipe before the kill is still readable
    acked: dict[tuple[int, int], str] = {}
    for line in lines:
        if not line.endswith(b"\n"):
            continue  # cut by the kill: its record is not counted as reported
        shard, sequence, event_id = line.decode().split()
        acked[(int(shard), int(sequence))] = event_id
    return acked


async def _verify(root: Path, acked: dict[tuple[int, int], str]) -> tuple[int, int, int]:
    """Reopen (which runs recovery) and check every acknowledged record is there, intact."""
    store = EmbeddedEventStore(root)
    await store.start()
    repaired = 1 if store.repaired_bytes else 0
    lost = corrupt = 0
    try:
        by_shard: dict[int, dict[int, str]] = {}
        for (shard, sequence), event_id in acked.items():
            by_shard.setdefault(shard, {})[sequence] = event_id
        for shard, expected in by_shard.items():
            found: dict[int, Any] = {}
            reader = await store.open_reader(
                "crash", group="verify", shard=shard, start=StartAt.at_sequence(min(expected))
            )
            try:
                while batch := await reader.read(max_records=5000):
                    found.update((r.sequence, r.event.id) for r in batch)
                    if batch[-1].sequence >= max(expected):
                        break
            except CorruptLog:
                corrupt += sum(1 for seq in expected if seq not in found)
                continue
            finally:
                await reader.close()
            for sequence, event_id in expected.items():
                if sequence not in found:
                    lost += 1
                elif found[sequence] != event_id:
                    corrupt += 1
    finally:
        await store.stop()
    return lost, corrupt, repaired
