"""Delivery: batching, the type filter, per-key order across lanes, concurrency, starts."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

import pytest

from reelscale.events.records import PutEntry, Record
from reelscale.functions import BatchFailure, FunctionsRuntime
from reelscale.functions.progress import lane_for
from tests.events.conftest import entries, event
from tests.functions.conftest import Rig, eventually


async def running_state(runtime: FunctionsRuntime, name: str) -> bool:
    return (await runtime.function_status(name)).state == "running"


async def caught_up(runtime: FunctionsRuntime, name: str) -> bool:
    return (await runtime.function_status(name)).lag_records == 0


async def test_batches_never_exceed_the_batch_size(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(25))
    sizes: list[int] = []
    seen: list[int] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        sizes.append(len(batch))
        seen.extend(record.event.data["n"] for record in batch)
        return None

    spec = rig.add(stream=stream, handler=handle, batch_size=10)
    async with rig.running() as runtime:
        await eventually(lambda: len(seen) == 25)
        await eventually(lambda: caught_up(runtime, spec.name))
    assert seen == list(range(25))
    assert max(sizes) == 10
    if rig.backend.name == "embedded":
        assert sizes == [10, 10, 5]


@pytest.mark.parametrize(("window_s", "expected_batches"), [(0.6, 1), (0.0, 3)])
async def test_the_batching_window_gathers_records_that_trickle_in(
    rig: Rig, window_s: float, expected_batches: int
) -> None:
    stream = rig.stream()
    batches: list[list[int]] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        batches.append([record.event.data["n"] for record in batch])
        return None

    spec = rig.add(stream=stream, handler=handle, batch_size=100, batch_window_s=window_s)
    async with rig.running() as runtime:
        await eventually(lambda: running_state(runtime, spec.name))
        for n in range(3):
            await rig.store.put(stream, event(n), partition_key="k")
            await asyncio.sleep(0.1 if window_s else 0.3)
        await eventually(lambda: sum(map(len, batches)) == 3)
        await asyncio.sleep(0.2)
    assert [n for batch in batches for n in batch] == [0, 1, 2]
    assert len(batches) == expected_batches


async def test_the_type_filter_skips_and_checkpoints_other_records(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    types = ["playback.started", "auth.login", "playback.stopped", "auth.logout"]
    await rig.store.put_batch(
        stream, [PutEntry(event(i, type=t), "k") for i, t in enumerate(types)]
    )
    seen: list[str] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        seen.extend(record.event.type for record in batch)
        return None

    spec = rig.add(stream=stream, handler=handle, types=("playback.",))
    async with rig.running() as runtime:
        await eventually(lambda: caught_up(runtime, spec.name))
        status = await runtime.function_status(spec.name)
    assert seen == ["playback.started", "playback.stopped"]
    assert (status.records_processed, status.records_skipped) == (2, 2)


def keys_in_distinct_lanes(lanes: int) -> list[str]:
    chosen: dict[int, str] = {}
    n = 0
    while len(chosen) < lanes:
        chosen.setdefault(lane_for(f"member-{n}", lanes), f"member-{n}")
        n += 1
    return list(chosen.values())


@pytest.mark.parametrize("parallelization", [1, 4])
async def test_order_holds_per_key_while_lanes_run_side_by_side(
    rig: Rig, parallelization: int
) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    keys = keys_in_distinct_lanes(4)
    await rig.store.put_batch(stream, entries(24, keys=keys))
    calls: list[tuple[str, list[int], float, float]] = []  # per key in each invocation
    invocations: list[tuple[frozenset[str], float, float]] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        started = time.monotonic()
        await asyncio.sleep(0.05)
        ended = time.monotonic()
        batch_keys = frozenset(record.partition_key for record in batch)
        invocations.append((batch_keys, started, ended))
        for key in sorted(batch_keys):
            numbers = [r.event.data["n"] for r in batch if r.partition_key == key]
            calls.append((key, numbers, started, ended))
        return None

    spec = rig.add(stream=stream, handler=handle, batch_size=2, parallelization=parallelization)
    async with rig.running() as runtime:
        await eventually(lambda: sum(len(c[1]) for c in calls) == 24)
        await eventually(lambda: caught_up(runtime, spec.name))

    for key in keys:
        mine = [c for c in calls if c[0] == key]
        assert [n for c in mine for n in c[1]] == [n for n in range(24) if keys[n % 4] == key]
        # one key's invocations never overlap: each starts after the one before ended
        assert all(a[3] <= b[2] for a, b in pairwise(mine))
    # invocations for different keys ran at the same time only with several lanes
    overlapping = any(
        not a[0] & b[0] and a[1] < b[2] and b[1] < a[2] for a in invocations for b in invocations
    )
    assert overlapping == (parallelization > 1)


async def test_the_concurrency_limit_holds_and_throttles_are_counted(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream, shards=2)
    keys = [f"k{i}" for i in range(16)]
    await rig.store.put_batch(stream, entries(64, keys=keys))
    running = 0
    peak = 0
    processed = 0

    async def handle(batch: list[Record]) -> BatchFailure | None:
        nonlocal running, peak, processed
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.03)
        running -= 1
        processed += len(batch)
        return None

    spec = rig.add(stream=stream, handler=handle, batch_size=2, parallelization=4, concurrency=2)
    async with rig.running() as runtime:
        await eventually(lambda: processed == 64)
        status = await runtime.function_status(spec.name)
    assert peak == 2  # reached, never passed
    assert status.throttles > 0
    assert rig.metric("reelscale_function_throttles_total", function=spec.name) == status.throttles
    assert status.shards == 2


async def test_cold_and_warm_starts(rig: Rig) -> None:
    stream = rig.stream()
    done: list[int] = []
    slow = {"n": -1}

    async def handle(batch: list[Record]) -> BatchFailure | None:
        n = batch[0].event.data["n"]
        if n == slow["n"]:
            slow["n"] = -1  # time out once, then succeed on the retry
            await asyncio.sleep(5)
        done.append(n)
        return None

    spec = rig.add(stream=stream, handler=handle, timeout_s=0.2, retry_backoff_s=0.0)
    idle_s = 60.0 if rig.backend.clock is not None else 0.3

    async def one(n: int) -> None:
        await rig.store.put(stream, event(n), partition_key="k")
        await eventually(lambda: n in done)

    async with rig.running(instance_idle_s=idle_s) as runtime:
        await eventually(lambda: running_state(runtime, spec.name))
        await one(0)
        await one(1)
        first = await runtime.function_status(spec.name)
        if rig.backend.clock is not None:
            rig.backend.clock.advance(idle_s + 1)
        else:
            await asyncio.sleep(idle_s + 0.1)
        await one(2)  # every instance was idle too long: cold
        slow["n"] = 3
        await one(3)  # times out (instance discarded), the retry starts cold
        await one(4)
        last = await runtime.function_status(spec.name)
    assert (first.cold_starts, first.warm_starts) == (1, 1)
    assert (last.cold_starts, last.warm_starts) == (3, 3)
    cold = rig.metric("reelscale_function_starts_total", function=spec.name, kind="cold")
    warm = rig.metric("reelscale_function_starts_total", function=spec.name, kind="warm")
    assert (cold, warm) == (3, 3)
    assert rig.metric("reelscale_function_duration_seconds_count", function=spec.name) == 6
