"""A group consumer feeds every shard to a handler, parents before children."""

from __future__ import annotations

import asyncio

import pytest
from tests.events.conftest import Backend, entries

from reelscale.events.consumer import GroupConsumer
from reelscale.events.records import Record

pytestmark = pytest.mark.asyncio


async def test_run_delivers_everything_in_order_per_key_across_a_reshard(backend: Backend) -> None:
    stream = backend.stream_name()
    keys = [f"k{i}" for i in range(8)]
    await backend.store.create_stream(stream, shards=2)
    await backend.store.put_batch(stream, entries(40, keys=keys))
    await backend.store.reshard(stream, shards=3)
    await backend.store.put_batch(stream, entries(40, keys=keys, start=40))

    seen: dict[str, list[int]] = {}
    stop = asyncio.Event()

    async def handle(records: list[Record]) -> None:
        for record in records:
            seen.setdefault(record.partition_key, []).append(record.event.data["n"])
        if sum(len(v) for v in seen.values()) >= 80:
            stop.set()

    consumer = GroupConsumer(backend.store, stream, group="run")
    await asyncio.wait_for(consumer.run(handle, stop=stop, wait_s=0.1), 20)
    await consumer.close()
    assert seen == {key: [n for n in range(80) if keys[n % 8] == key] for key in keys}
    assert all(lag.records == 0 for lag in await backend.store.lag(stream, group="run"))


async def test_a_failing_handler_stops_with_its_batch_unacknowledged(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream)
    await backend.store.put_batch(stream, entries(5))

    async def fail(records: list[Record]) -> None:
        raise RuntimeError("handler bug")

    consumer = GroupConsumer(backend.store, stream, group="failing")
    with pytest.raises(RuntimeError, match="handler bug"):
        await asyncio.wait_for(consumer.run(fail, stop=asyncio.Event(), wait_s=0.1), 10)
    await consumer.close()
    (lag,) = await backend.store.lag(stream, group="failing")
    assert lag.records == 5  # nothing was checkpointed: it all comes again
