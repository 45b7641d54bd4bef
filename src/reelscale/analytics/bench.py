"""Analytics benchmark, as a plain function that returns the numbers (the CLI prints them).

    ingest(sessions=2000, minutes=10) -> records, ingest_events_per_s, snapshot_ms_p50,
                                         snapshot_ms_p99, snapshot_bytes, late, applied

Synthetic playback traffic in event-time order with a few seconds of jitter, spread over
four shards: every session starts, heartbeats every 10 s and stops; one process reports
service metrics every 10 s. The records are built before the clock starts, and a fake
clock follows the events, so what is timed is `Analytics.ingest` alone (parsing, windows,
watermarks) in batches of `batch`, then `snapshot()` as the API and each live stream build
it: the whole hour of series, serialised to JSON.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from reelscale.analytics.service import Analytics
from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.events.records import Record

HEARTBEAT_S = 10


def ingest(
    *,
    sessions: int = 2000,
    minutes: int = 10,
    batch: int = 500,
    shards: int = 4,
    snapshots: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """Ingest throughput and snapshot latency over synthetic traffic (see the docstring)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic traffic, seeded to be repeatable
    start = datetime(2026, 1, 1, tzinfo=UTC)
    records = _traffic(rng, start, sessions=sessions, minutes=minutes, shards=shards)
    clock = FakeClock(start)
    analytics = Analytics(clock=clock)
    began = time.perf_counter()
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        behind = (chunk[-1].event.time - clock.now()).total_seconds()
        if behind > 0:
            clock.advance(behind)  # processing time keeps up with event time
        analytics.ingest(chunk)
    elapsed = time.perf_counter() - began
    timings = []
    size = 0
    for _ in range(snapshots):
        t0 = time.perf_counter()
        size = len(analytics.snapshot(minutes=60).model_dump_json())
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    health = {h.family: h for h in analytics.snapshot().ingest}["playback"]
    return {
        "records": len(records),
        "ingest_events_per_s": round(len(records) / elapsed),
        "snapshot_ms_p50": round(statistics.median(timings), 3),
        "snapshot_ms_p99": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 3),
        "snapshot_bytes": size,
        "applied": health.applied,
        "late": health.late,
    }


def _traffic(
    rng: random.Random, start: datetime, *, sessions: int, minutes: int, shards: int
) -> list[Record]:
    span_s = minutes * 60
    events: list[tuple[float, int, str, dict[str, Any]]] = []
    for n in range(sessions):
        session, title = f"s{n}", f"title-{rng.randrange(200)}"
        shard = n % shards
        begin = rng.uniform(0, span_s * 0.8)
        length = rng.uniform(60, span_s - begin)
        events.append(
            (begin, shard, "playback.started", {"session_id": session, "title_id": title})
        )
        t = begin + HEARTBEAT_S
        while t < begin + length:
            stalled = rng.choice((0, 0, 0, 0, rng.randrange(3000)))
            data = {
                "session_id": session,
                "title_id": title,
                "watched_ms": HEARTBEAT_S * 1000 - stalled,
                "rebuffer_ms": stalled,
                "state": "playing",
            }
            events.append((t, shard, "playback.heartbeat", data))
            t += HEARTBEAT_S
        events.append((t, shard, "playback.stopped", {"session_id": session, "title_id": title}))
    for t in range(0, span_s, HEARTBEAT_S):
        services = {"playback": {"requests": 900, "errors": 1, "latency_ms_p99": 80.0}}
        events.append((float(t), 0, "service.metrics", {"services": services}))
    # Arrival order: event time plus up to 3 s of delivery jitter.
    events.sort(key=lambda e: e[0] + rng.uniform(0, 3))
    sequences = [0] * shards
    out = []
    for t, shard, type, data in events:
        sequences[shard] += 1
        stream = "metrics" if type == "service.metrics" else "playback"
        when = start + timedelta(seconds=t)
        event = CloudEvent(id=uuid.uuid4().hex, source="bench", type=type, time=when, data=data)
        out.append(Record(stream, shard, sequences[shard], "k", when, event))
    return out
