"""Start, stop and restart: prompt, and at least once across them."""

from __future__ import annotations

import asyncio
import time

from reelscale.core.lifecycle import Service, Supervisor
from reelscale.events.records import Record
from reelscale.functions import BatchFailure, FunctionsRuntime
from tests.events.conftest import entries
from tests.functions.conftest import Rig, eventually


async def test_stop_is_prompt_even_with_a_handler_stuck_and_one_backing_off(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(1))
    entered = asyncio.Event()

    async def stuck(batch: list[Record]) -> BatchFailure | None:
        entered.set()
        await asyncio.Event().wait()
        return None

    async def failing(batch: list[Record]) -> BatchFailure | None:
        raise ValueError("always")

    rig.add(stream=stream, handler=stuck, timeout_s=600)
    rig.add(stream=stream, handler=failing, retry_backoff_s=60, max_backoff_s=60)
    runtime = FunctionsRuntime(rig.store, rig.registry, clock=rig.clock, refresh_s=0.1)
    await runtime.start()
    await asyncio.wait_for(entered.wait(), 10)
    await asyncio.sleep(0.2)  # the failing one is now in its (real) 60 s backoff
    started = time.monotonic()
    await runtime.stop()
    assert time.monotonic() - started < 2.0
    assert not runtime.started


async def test_a_stuck_function_does_not_hold_up_another(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(5))
    entered = asyncio.Event()
    seen: list[int] = []

    async def stuck(batch: list[Record]) -> BatchFailure | None:
        entered.set()
        await asyncio.Event().wait()
        return None

    async def free(batch: list[Record]) -> BatchFailure | None:
        await entered.wait()  # only once the other one is stuck
        seen.extend(record.event.data["n"] for record in batch)
        return None

    stuck_spec = rig.add(stream=stream, handler=stuck, timeout_s=600, batch_size=1)
    rig.add(stream=stream, handler=free, batch_size=1)
    async with rig.running() as runtime:
        await eventually(lambda: seen == [0, 1, 2, 3, 4])
        status = await runtime.function_status(stuck_spec.name)
    assert (status.lag_records, status.concurrent_executions) == (5, 1)


async def test_what_was_not_finished_before_a_stop_comes_again_after_it(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(10))
    seen: list[int] = []
    hold_from = {"n": 6}

    async def handle(batch: list[Record]) -> BatchFailure | None:
        for record in batch:
            n = record.event.data["n"]
            if n >= hold_from["n"]:
                await asyncio.Event().wait()  # still running when the runtime stops
            seen.append(n)
        return None

    spec = rig.add(stream=stream, handler=handle, batch_size=2, timeout_s=600)
    async with rig.running() as runtime:
        await eventually(lambda: seen == [0, 1, 2, 3, 4, 5])
        await eventually(lambda: checkpoint_is(rig, stream, spec.consumer_group, 6))
    before = list(seen)
    hold_from["n"] = 100
    async with rig.running() as runtime:
        await eventually(lambda: len(seen) == 10)
        await eventually(lambda: lag_zero(runtime, spec.name))
    assert before == [0, 1, 2, 3, 4, 5]
    assert seen[6:] == [6, 7, 8, 9]  # nothing checkpointed came twice, nothing was lost


async def checkpoint_is(rig: Rig, stream: str, group: str, sequence_count: int) -> bool:
    (lag,) = await rig.store.lag(stream, group=group)
    return lag.records == 10 - sequence_count


async def lag_zero(runtime: FunctionsRuntime, name: str) -> bool:
    return (await runtime.function_status(name)).lag_records == 0


async def test_the_runtime_starts_after_the_store_under_the_supervisor(rig: Rig) -> None:
    stream = rig.stream()
    seen: list[int] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        seen.extend(record.event.data["n"] for record in batch)
        return None

    spec = rig.add(stream=stream, handler=handle)
    runtime = FunctionsRuntime(rig.store, rig.registry, clock=rig.clock, refresh_s=0.1)
    supervisor = Supervisor()
    store_service: Service = rig.store  # already started by the fixture: start is a no-op
    supervisor.add(store_service)
    supervisor.add(runtime, depends_on=[store_service])
    await supervisor.start()
    try:
        assert supervisor.ready
        await eventually(lambda: stream_exists(rig, stream))  # the runtime made it
        await rig.store.put_batch(stream, entries(3))
        await eventually(lambda: seen == [0, 1, 2])
        assert (await runtime.function_status(spec.name)).state == "running"
    finally:
        await runtime.stop()  # leave the store to the fixture


async def stream_exists(rig: Rig, stream: str) -> bool:
    return stream in await rig.store.list_streams()
