"""What only the NATS backend has to show: the reshard fence and foreign messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from tests.events.conftest import Backend, drain, event, nats_backend, reader_for

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def nats() -> AsyncIterator[Backend]:
    async with nats_backend() as backend:
        yield backend


async def test_a_publisher_with_a_stale_shard_map_is_fenced_and_retries(nats: Backend) -> None:
    stream = nats.stream_name()
    await nats.store.create_stream(stream, shards=2)
    await nats.store.put(stream, event(0), partition_key="k")  # caches the 2-shard map
    async with nats_backend() as other:  # another process reshards
        await other.store.reshard(stream, shards=4)
    record = await nats.store.put(stream, event(1), partition_key="k")
    assert record.shard in {2, 3, 4, 5}  # refused on the closed parent, retried on the child


async def test_a_message_published_around_the_store_is_skipped(nats: Backend) -> None:
    from reelscale.events.nats import NatsEventStore

    store = nats.store
    assert isinstance(store, NatsEventStore)
    stream = nats.stream_name()
    await store.create_stream(stream)
    await store.put(stream, event(0), partition_key="k")
    await store.js.publish(f"{stream}.0", b"not an event")
    await store.put(stream, event(1), partition_key="k")
    reader = await reader_for(nats, stream, 0)
    assert [r.event.data["n"] for r in await drain(reader)] == [0, 1]
