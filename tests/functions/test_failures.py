"""Failures: retries with backoff, bisection, partial failures, record age, timeouts."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from reelscale.events.records import Record
from reelscale.functions import BatchFailure, FunctionsRuntime
from tests.events.conftest import entries
from tests.functions.conftest import Rig, eventually


async def caught_up(runtime: FunctionsRuntime, name: str) -> bool:
    return (await runtime.function_status(name)).lag_records == 0


async def running(runtime: FunctionsRuntime, name: str) -> bool:
    return (await runtime.function_status(name)).state == "running"


async def letters_count(runtime: FunctionsRuntime, name: str, count: int) -> bool:
    return len(await runtime.dead_letters(name)) == count


async def test_retries_then_success(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(3))
    calls: list[list[int]] = []

    async def flaky(batch: list[Record]) -> BatchFailure | None:
        calls.append([record.event.data["n"] for record in batch])
        if len(calls) <= 2:
            raise ConnectionError("downstream is restarting")
        return None

    spec = rig.add(stream=stream, handler=flaky, max_retries=3, bisect_on_error=False)
    async with rig.running() as runtime:
        await eventually(lambda: caught_up(runtime, spec.name))
        status = await runtime.function_status(spec.name)
        assert await runtime.dead_letters(spec.name) == []
    assert calls == [[0, 1, 2]] * 3
    assert rig.sleeps == [0.2, 0.4]
    assert (status.invocations, status.errors, status.retries) == (3, 2, 2)
    assert status.records_processed == 3
    assert status.dead_lettered == 0
    assert status.last_error is not None
    assert "downstream is restarting" in status.last_error
    assert rig.metric("reelscale_function_errors_total", function=spec.name) == 2
    assert rig.metric("reelscale_function_invocations_total", function=spec.name, outcome="ok") == 1


async def test_backoff_grows_to_its_cap_and_a_failing_batch_ends_in_the_dead_letters(
    rig: Rig,
) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(2))
    ok: list[int] = []

    async def fails_on_early_records(batch: list[Record]) -> BatchFailure | None:
        if any(record.event.data["n"] < 2 for record in batch):
            raise ValueError("cannot handle these")
        ok.extend(record.event.data["n"] for record in batch)
        return None

    spec = rig.add(
        stream=stream,
        handler=fails_on_early_records,
        max_retries=5,
        retry_backoff_s=0.1,
        max_backoff_s=0.3,
        bisect_on_error=False,
    )
    async with rig.running() as runtime:
        await eventually(lambda: letters_count(runtime, spec.name, 2))
        await rig.store.put_batch(stream, entries(2, start=2))
        await eventually(lambda: ok == [2, 3])  # the shard moved on
        await eventually(lambda: caught_up(runtime, spec.name))
        letters = await runtime.dead_letters(spec.name)
    assert rig.sleeps == [0.1, 0.2, 0.3, 0.3, 0.3]
    assert [letter.event.data["n"] for letter in letters if letter.event] == [0, 1]
    assert {letter.attempts for letter in letters} == {6}
    assert {letter.reason for letter in letters} == {"retries_exhausted"}
    assert all("ValueError: cannot handle these" in letter.error for letter in letters)


async def test_bisection_isolates_the_poison_record(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    records = await rig.store.put_batch(stream, entries(8))
    poison = records[5]
    succeeded: list[int] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        if any(record.sequence == poison.sequence for record in batch):
            raise RuntimeError(f"poison pill at {poison.sequence}")
        succeeded.extend(record.event.data["n"] for record in batch)
        return None

    spec = rig.add(stream=stream, handler=handle, batch_size=8, max_retries=2, bisect_on_error=True)
    async with rig.running() as runtime:
        await eventually(lambda: caught_up(runtime, spec.name))
        letters = await runtime.dead_letters(spec.name)
        status = await runtime.function_status(spec.name)
    assert succeeded == [0, 1, 2, 3, 4, 6, 7]  # each once, and in order
    (letter,) = letters
    assert (letter.stream, letter.shard, letter.sequence) == (stream, 0, poison.sequence)
    assert letter.partition_key == poison.partition_key
    assert letter.event == poison.event
    # in the failed invocations of 8, 4 and 2 records, then alone once and twice more
    assert letter.attempts == 6
    assert f"RuntimeError: poison pill at {poison.sequence}" in letter.error
    assert letter.reason == "retries_exhausted"
    assert status.dead_letters == 1
    assert status.dead_lettered == 1


async def test_a_partial_batch_failure_retries_from_the_lowest_failed_record(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    records = await rig.store.put_batch(stream, entries(5))
    batches: list[list[int]] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        batches.append([record.event.data["n"] for record in batch])
        if len(batches) == 1:
            return BatchFailure(failed=[records[3].sequence, records[2].sequence])
        return None

    spec = rig.add(stream=stream, handler=handle, bisect_on_error=False)
    async with rig.running() as runtime:
        await eventually(lambda: caught_up(runtime, spec.name))
        status = await runtime.function_status(spec.name)
    assert batches == [[0, 1, 2, 3, 4], [2, 3, 4]]
    assert status.records_processed == 5
    assert (
        rig.metric("reelscale_function_invocations_total", function=spec.name, outcome="partial")
        == 1
    )


async def test_a_record_reported_failed_every_time_is_the_only_dead_letter(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    records = await rig.store.put_batch(stream, entries(5))
    bad = records[2].sequence
    succeeded: list[int] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        failed = [record.sequence for record in batch if record.sequence == bad]
        done = batch if not failed else batch[: [r.sequence for r in batch].index(bad)]
        succeeded.extend(record.event.data["n"] for record in done)
        return BatchFailure(failed=failed) if failed else None

    spec = rig.add(stream=stream, handler=handle, max_retries=1, bisect_on_error=True)
    async with rig.running() as runtime:
        await eventually(lambda: caught_up(runtime, spec.name))
        letters = await runtime.dead_letters(spec.name)
    assert [letter.sequence for letter in letters] == [bad]
    assert sorted(set(succeeded)) == [0, 1, 3, 4]


async def test_a_report_naming_records_outside_the_batch_fails_the_batch(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(2))

    async def handle(batch: list[Record]) -> BatchFailure | None:
        return BatchFailure(failed=[10**15])

    spec = rig.add(stream=stream, handler=handle, max_retries=0, bisect_on_error=False)
    async with rig.running() as runtime:
        await eventually(lambda: letters_count(runtime, spec.name, 2))
        letters = await runtime.dead_letters(spec.name)
    assert "not in the batch: 1000000000000000" in letters[0].error


async def test_records_past_the_maximum_age_go_to_the_dead_letters_unprocessed(
    rig: Rig,
) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(3))
    max_age = 50.0 if rig.backend.clock is not None else 1.0
    await rig.backend.let_time_pass(max_age + 0.5)
    await rig.store.put_batch(stream, entries(2, start=3))
    seen: list[int] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        seen.extend(record.event.data["n"] for record in batch)
        return None

    spec = rig.add(stream=stream, handler=handle, max_record_age_s=max_age)
    async with rig.running() as runtime:
        await eventually(lambda: caught_up(runtime, spec.name))
        letters = await runtime.dead_letters(spec.name)
    assert seen == [3, 4]
    assert [letter.event.data["n"] for letter in letters if letter.event] == [0, 1, 2]
    assert {(letter.reason, letter.attempts) for letter in letters} == {("record_expired", 0)}
    assert f"past max_record_age_s={max_age}" in letters[0].error


async def test_a_handler_that_always_raises_never_blocks_the_shard(rig: Rig) -> None:
    stream = rig.stream()
    calls = 0

    async def broken(batch: list[Record]) -> BatchFailure | None:
        nonlocal calls
        calls += 1
        raise KeyError("always")

    spec = rig.add(stream=stream, handler=broken, batch_size=4, max_retries=1)
    async with rig.running() as runtime:
        await eventually(lambda: running(runtime, spec.name))
        await rig.store.put_batch(stream, entries(10))
        await eventually(lambda: letters_count(runtime, spec.name, 10))
        await rig.store.put_batch(stream, entries(5, start=10))
        await eventually(lambda: letters_count(runtime, spec.name, 15))
        await eventually(lambda: caught_up(runtime, spec.name))
        status = await runtime.function_status(spec.name)
        letters = await runtime.dead_letters(spec.name)
    assert [letter.event.data["n"] for letter in letters if letter.event] == list(range(15))
    assert status.errors == calls
    assert status.dead_letters == 15
    assert status.state == "running"


async def test_a_handler_that_never_returns_is_timed_out(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, [*entries(1), *entries(1, start=1)])
    done: list[int] = []

    async def hangs_on_the_first(batch: list[Record]) -> BatchFailure | None:
        if batch[0].event.data["n"] == 0:
            await asyncio.Event().wait()  # never acknowledges
        done.append(batch[0].event.data["n"])
        return None

    spec = rig.add(
        stream=stream,
        handler=hangs_on_the_first,
        batch_size=1,
        timeout_s=0.2,
        max_retries=1,
        bisect_on_error=False,
    )
    async with rig.running() as runtime:
        await eventually(lambda: done == [1])
        await eventually(lambda: caught_up(runtime, spec.name))
        (letter,) = await runtime.dead_letters(spec.name)
    assert letter.error == "timed out after 0.2 s"
    assert letter.attempts == 2
    assert (
        rig.metric("reelscale_function_invocations_total", function=spec.name, outcome="timeout")
        == 2
    )


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("returns text", "handler returned str; expected None or BatchFailure"),
        ("exits", "SystemExit: 3"),
    ],
)
async def test_odd_handlers_fail_their_batch_without_harm(
    rig: Rig, behaviour: str, error: str
) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(1))

    async def odd(batch: list[Record]) -> Any:
        if behaviour == "exits":
            sys.exit(3)
        return "done"

    spec = rig.add(stream=stream, handler=odd, max_retries=0)
    async with rig.running() as runtime:
        await eventually(lambda: letters_count(runtime, spec.name, 1))
        (letter,) = await runtime.dead_letters(spec.name)
    assert error in letter.error


async def test_without_a_dead_letter_stream_failures_are_dropped_and_counted(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(2))

    async def broken(batch: list[Record]) -> BatchFailure | None:
        raise ValueError("nope")

    spec = rig.add(stream=stream, handler=broken, max_retries=0, dead_letter=False)
    async with rig.running() as runtime:
        await eventually(lambda: caught_up(runtime, spec.name))
        status = await runtime.function_status(spec.name)
        assert await runtime.dead_letters(spec.name) == []
    assert status.dead_letters is None
    assert status.dead_letter_stream is None
    assert status.dead_lettered == 2
    assert spec.dead_letter_stream not in await rig.store.list_streams()
    assert "dropping records the function gave up on" in caplog.text


async def test_status_reports_lag_before_the_function_catches_up(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(6))
    gate = asyncio.Event()

    async def waits(batch: list[Record]) -> BatchFailure | None:
        await gate.wait()
        return None

    spec = rig.add(stream=stream, handler=waits, batch_size=2)
    async with rig.running() as runtime:
        await eventually(lambda: running(runtime, spec.name))
        status = await runtime.function_status(spec.name)
        assert status.lag_records == 6
        await rig.backend.let_time_pass(2.0)
        status = await runtime.function_status(spec.name)
        assert status.iterator_age_s is not None
        assert status.iterator_age_s >= 1.5
        gate.set()
        await eventually(lambda: caught_up(runtime, spec.name))
        status = await runtime.function_status(spec.name)
    assert (status.lag_records, status.iterator_age_s) == (0, 0.0)
