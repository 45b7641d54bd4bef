"""The dead-letter stream: its format, listing, replay (once), and status."""

from __future__ import annotations

from datetime import datetime

import pytest

from reelscale.core.errors import BadRequest, NotFound
from reelscale.events.records import PutEntry, Record
from reelscale.functions import BatchFailure, FunctionsRuntime
from reelscale.functions.deadletters import LETTER_TYPE
from tests.events.conftest import drain, entries
from tests.functions.conftest import Rig, eventually


async def caught_up(runtime: FunctionsRuntime, name: str) -> bool:
    return (await runtime.function_status(name)).lag_records == 0


async def letters_count(runtime: FunctionsRuntime, name: str, count: int) -> bool:
    return len(await runtime.dead_letters(name)) == count


class Picky:
    """Fails records whose data says bad=True until it is fixed."""

    def __init__(self) -> None:
        self.fixed = False
        self.seen: list[tuple[int, str]] = []

    async def __call__(self, batch: list[Record]) -> BatchFailure | None:
        if not self.fixed and any(record.event.data.get("bad") for record in batch):
            raise ValueError("refusing bad records")
        self.seen.extend((record.event.data["n"], record.partition_key) for record in batch)
        return None


def mixed(count: int) -> list[PutEntry]:
    """Records n=0..count-1 on keys k0..k2; every odd one is bad."""
    return [
        PutEntry(entry.event.model_copy(update={"data": {"n": i, "bad": i % 2 == 1}}), f"k{i % 3}")
        for i, entry in enumerate(entries(count))
    ]


async def test_a_dead_letter_is_a_cloudevent_holding_the_original_and_the_error(
    rig: Rig,
) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    (record,) = await rig.store.put_batch(stream, mixed(2)[1:])
    handler = Picky()
    spec = rig.add(stream=stream, handler=handler, max_retries=1)
    async with rig.running() as runtime:
        await eventually(lambda: letters_count(runtime, spec.name, 1))
    (stored,) = await read_all(rig, spec.dead_letter_stream)
    (source,) = await read_all(rig, stream)  # as read: NATS gives the server's timestamp
    letter = stored.event
    assert letter.type == LETTER_TYPE == "reelscale.function.failed"
    assert letter.source == f"reelscale/functions/{spec.name}"
    assert letter.subject == f"{stream}/0/{record.sequence}"
    data = letter.data
    assert data["event"] == record.event.model_dump(mode="json")
    assert data["event_truncated"] is False
    assert (data["stream"], data["shard"], data["sequence"]) == (stream, 0, record.sequence)
    assert data["partition_key"] == record.partition_key == "k1"
    assert data["function"] == spec.name
    assert data["reason"] == "retries_exhausted"
    assert data["attempts"] == 2
    assert data["error"].startswith("ValueError: refusing bad records")
    assert datetime.fromisoformat(data["failed_at"]) >= record.timestamp
    assert datetime.fromisoformat(data["record_time"]) == source.timestamp


async def read_all(rig: Rig, stream: str) -> list[Record]:
    reader = await rig.store.open_reader(stream, group="inspect", shard=0)
    try:
        return await drain(reader)
    finally:
        await reader.close()


async def test_replay_puts_each_letter_back_once_and_the_function_sees_it_again(
    rig: Rig,
) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, mixed(6))
    handler = Picky()
    spec = rig.add(stream=stream, handler=handler, max_retries=0, batch_size=1)
    async with rig.running() as runtime:
        await eventually(lambda: letters_count(runtime, spec.name, 3))
        await eventually(lambda: caught_up(runtime, spec.name))
        assert sorted(n for n, _ in handler.seen) == [0, 2, 4]
        status = await runtime.function_status(spec.name)
        assert (status.dead_letters, status.dead_letters_unreplayed) == (3, 3)

        handler.fixed = True
        assert await runtime.replay_dead_letters(spec.name) == 3
        await eventually(lambda: len(handler.seen) == 6)
        assert await runtime.replay_dead_letters(spec.name) == 0  # nothing new: no repeat
        await eventually(lambda: caught_up(runtime, spec.name))
        status = await runtime.function_status(spec.name)
    assert sorted(handler.seen) == sorted((n, f"k{n % 3}") for n in range(6))  # same keys
    assert (status.dead_letters, status.dead_letters_unreplayed) == (3, 0)
    total = sum(lag.records for lag in await rig.store.lag(stream, group="census"))
    assert total == 9  # six originals, three replayed, none twice


async def test_replay_with_a_limit_goes_on_where_it_stopped(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, mixed(6))
    handler = Picky()
    spec = rig.add(stream=stream, handler=handler, max_retries=0, batch_size=1)
    async with rig.running() as runtime:
        await eventually(lambda: letters_count(runtime, spec.name, 3))
        handler.fixed = True
        first = await runtime.replay(spec.name, limit=1)
        rest = await runtime.replay(spec.name)
        await eventually(lambda: len(handler.seen) == 6)
    assert (first.replayed, rest.replayed) == (1, 2)
    assert [n for n, _ in handler.seen[3:]] == [1, 3, 5]


async def test_listing_pages_through_letters_and_checks_its_input(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, mixed(10))
    spec = rig.add(stream=stream, handler=Picky(), max_retries=0, batch_size=1)
    async with rig.running() as runtime:
        await eventually(lambda: letters_count(runtime, spec.name, 5))
        page = await runtime.dead_letters(spec.name, limit=2)
        after = await runtime.dead_letters(spec.name, limit=100, after=page[-1].letter_sequence)
        with pytest.raises(NotFound, match="no function named 'nope'"):
            await runtime.dead_letters("nope")
        with pytest.raises(NotFound):
            await runtime.replay_dead_letters("nope")
        with pytest.raises(BadRequest, match="limit must be 1 to 10000"):
            await runtime.dead_letters(spec.name, limit=0)
        with pytest.raises(BadRequest, match="limit must be at least 1"):
            await runtime.replay(spec.name, limit=0)
    numbers = [letter.event.data["n"] for letter in page + after if letter.event]
    assert numbers == [1, 3, 5, 7, 9]
    assert len(page) == 2


async def test_status_lists_every_function_with_lag_errors_and_dead_letters(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, mixed(4))
    picky = rig.add(stream=stream, handler=Picky(), max_retries=1, batch_size=1)
    idle = rig.add(stream=rig.stream(), handler=Picky(), name=rig.name("idle"))
    async with rig.running() as runtime:
        await eventually(lambda: letters_count(runtime, picky.name, 2))
        await eventually(lambda: caught_up(runtime, picky.name))
        statuses = {status.name: status for status in await runtime.status()}
    assert set(statuses) == {picky.name, idle.name}
    status = statuses[picky.name]
    assert (status.stream, status.group, status.state) == (stream, picky.name, "running")
    assert status.lag_records == 0
    assert status.errors == 4  # two bad records, each failing twice
    assert status.retries == 2
    assert (status.dead_letters, status.dead_lettered) == (2, 2)
    assert status.last_error is not None
    assert "refusing bad records" in status.last_error
    assert status.dead_letter_stream == picky.dead_letter_stream
    assert statuses[idle.name].dead_letters == 0
    assert statuses[idle.name].invocations == 0
    assert (
        rig.metric(
            "reelscale_function_dead_letters_total", function=picky.name, reason="retries_exhausted"
        )
        == 2
    )


async def test_status_before_start_says_stopped(rig: Rig) -> None:
    spec = rig.add(stream=rig.stream(), handler=Picky())
    runtime = FunctionsRuntime(rig.store, rig.registry, clock=rig.clock)
    (status,) = await runtime.status()
    assert (status.name, status.state, status.lag_records) == (spec.name, "stopped", None)
