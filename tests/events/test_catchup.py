"""A catch-up reads the window since a time on every shard, and again on the next start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.events.conftest import Backend, entries

from reelscale.events.catchup import catch_up
from reelscale.events.records import Record

pytestmark = pytest.mark.asyncio


def _now(backend: Backend) -> datetime:
    return backend.clock.now() if backend.clock is not None else datetime.now(UTC)


async def test_it_reads_the_window_every_time_and_stops_at_the_tails(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream, shards=3)
    await backend.store.put_batch(stream, entries(30, keys=[f"k{i}" for i in range(6)]))
    since = _now(backend) - timedelta(minutes=15)
    runs: list[list[int]] = []
    for _ in range(2):  # no checkpoint is kept: the second start reads it all again
        seen: list[int] = []

        async def handle(batch: list[Record], seen: list[int] = seen) -> None:
            seen.extend(record.event.data["n"] for record in batch)

        read = await catch_up(backend.store, stream, group="cu", since=since, handle=handle)
        assert read == len(seen)
        runs.append(sorted(seen))
    assert runs == [list(range(30)), list(range(30))]


async def test_records_older_than_the_window_are_left_out(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream, shards=1)
    await backend.store.put_batch(stream, entries(5))
    await backend.let_time_pass(1.2)
    since = _now(backend) - timedelta(seconds=0.6)
    await backend.store.put_batch(stream, entries(3, start=5))
    seen: list[int] = []

    async def handle(batch: list[Record]) -> None:
        seen.extend(record.event.data["n"] for record in batch)

    await catch_up(backend.store, stream, group="cu", since=since, handle=handle)
    assert seen == [5, 6, 7]


async def test_an_empty_or_quiet_stream_is_read_at_once(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream, shards=2)

    async def handle(batch: list[Record]) -> None:
        raise AssertionError("nothing to hand over")

    now = _now(backend)
    assert await catch_up(backend.store, stream, group="cu", since=now, handle=handle) == 0
    await backend.store.put_batch(stream, entries(2))
    later = _now(backend) + timedelta(minutes=1)
    assert await catch_up(backend.store, stream, group="cu", since=later, handle=handle) == 0
