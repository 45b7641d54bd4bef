"""The NATS backend at speed: the reader's continuous pull, the put path's shard map.

Records flow into a buffer ahead of the reads. A buffer must not cost the contract
anything: nothing lost, duplicated or reordered across rewinds, reopens, server
redeliveries or a delivery lost on the way.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from tests.events.conftest import Backend, entries, event, nats_backend, reader_for

from reelscale.core.errors import NotFound
from reelscale.events.records import Record
from reelscale.events.store import ShardReader

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def nats() -> AsyncIterator[Backend]:
    async with nats_backend() as backend:
        yield backend


def numbers(records: list[Record]) -> list[int]:
    return [r.event.data["n"] for r in records]


async def read_until(reader: ShardReader, count: int, *, max_records: int = 500) -> list[Record]:
    out: list[Record] = []
    async with asyncio.timeout(10):
        while len(out) < count:
            out += await reader.read(max_records=max_records, wait_s=0.2)
    return out


async def test_rewinds_and_reopens_resume_at_the_checkpoint_with_nothing_lost(
    nats: Backend,
) -> None:
    stream = nats.stream_name()
    await nats.store.create_stream(stream)
    total = 600
    rng = random.Random(7)
    reader = await reader_for(nats, stream, 0)
    put = 0
    expected = 0  # the next n a read must hand out
    checkpointed = -1  # the last n checkpointed
    handed: list[int] = []
    async with asyncio.timeout(60):
        while checkpointed < total - 1:
            if put < total:  # keep putting while reading: the buffer fills as it goes
                more = min(total - put, rng.randint(1, 40))
                await nats.store.put_batch(stream, entries(more, start=put))
                put += more
            batch = await reader.read(max_records=rng.randint(1, 30), wait_s=0.2)
            got = numbers(batch)
            assert got == list(range(expected, expected + len(got)))  # in order, no gaps
            handed += got
            expected += len(got)
            roll = rng.random()
            if batch and roll < 0.6:
                upto = rng.randrange(len(batch))
                await reader.checkpoint(batch[upto].sequence)
                checkpointed = got[upto]
            elif roll < 0.75:
                await reader.rewind()  # with records still buffered: they come again
                expected = checkpointed + 1
            elif roll < 0.85:
                await reader.close()
                reader = await reader_for(nats, stream, 0)
                expected = checkpointed + 1
    await reader.close()
    assert sorted(set(handed)) == list(range(total))


async def test_a_waiting_read_returns_as_soon_as_a_record_is_stored(nats: Backend) -> None:
    stream = nats.stream_name()
    await nats.store.create_stream(stream)
    reader = await reader_for(nats, stream, 0)
    assert await reader.read(max_records=10, wait_s=0.05) == []
    for n in range(5):
        started = time.perf_counter()
        waiting = asyncio.create_task(reader.read(max_records=10, wait_s=5.0))
        await asyncio.sleep(0.05)
        await nats.store.put(stream, event(n), partition_key="k")
        got = await waiting
        assert numbers(got) == [n]
        assert time.perf_counter() - started < 2.0  # not the 5 s wait
        await reader.checkpoint(got[-1].sequence)
    await reader.close()


async def test_server_redeliveries_of_buffered_records_are_dropped(nats: Backend) -> None:
    stream = nats.stream_name()
    await nats.store.create_stream(stream)
    await nats.store.put_batch(stream, entries(6))
    reader = await reader_for(nats, stream, 0, ack_wait_s=1.0)
    first = await read_until(reader, 3, max_records=3)  # the rest wait in the buffer
    assert numbers(first) == [0, 1, 2]
    await reader.checkpoint(first[-1].sequence)  # nothing read is left unchecked
    await asyncio.sleep(1.5)  # the server redelivers 3, 4, 5: delivered, never acked
    rest = await read_until(reader, 3)
    assert numbers(rest) == [3, 4, 5]
    assert await reader.read(max_records=10, wait_s=0.3) == []  # and only once
    await reader.close()


async def test_an_overdue_reader_rewinds_past_its_buffer_in_order(nats: Backend) -> None:
    stream = nats.stream_name()
    await nats.store.create_stream(stream)
    await nats.store.put_batch(stream, entries(6))
    reader = await reader_for(nats, stream, 0, ack_wait_s=1.0)
    first = await read_until(reader, 3, max_records=3)
    assert numbers(first) == [0, 1, 2]
    await reader.checkpoint(first[0].sequence)
    await asyncio.sleep(1.5)  # 1 and 2 were read and not checkpointed within ack_wait
    again = await read_until(reader, 5)
    assert numbers(again) == [1, 2, 3, 4, 5]  # from the checkpoint, once each
    await reader.checkpoint(again[-1].sequence)
    assert await reader.read(max_records=10, wait_s=0.3) == []
    await reader.close()


async def test_a_lost_delivery_restarts_the_pull_after_the_last_record_handed_out(
    nats: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reelscale.events.nats.pull import ContinuousPull

    deliveries = 0
    original = ContinuousPull._on_msg

    async def lose_the_fifth(self: ContinuousPull, msg: Any) -> None:
        nonlocal deliveries
        if not msg.headers or "Status" not in msg.headers:
            deliveries += 1
            if deliveries == 5:
                return  # as if it never came (a slow consumer's drop, a reconnect)
        await original(self, msg)

    monkeypatch.setattr(ContinuousPull, "_on_msg", lose_the_fifth)
    stream = nats.stream_name()
    await nats.store.create_stream(stream)
    await nats.store.put_batch(stream, entries(20))
    reader = await reader_for(nats, stream, 0)
    got = await read_until(reader, 20)
    assert numbers(got) == list(range(20))  # nothing skipped, nothing twice
    await reader.close()


async def test_pull_requests_lost_without_a_word_are_noticed_and_asked_again(
    nats: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reelscale.events.nats import pull

    monkeypatch.setattr(pull, "PULL_EXPIRES_S", 0.5)
    monkeypatch.setattr(pull, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(pull, "MISSED_HEARTBEATS_S", 0.6)
    original = pull.ContinuousPull._on_status

    async def lose_timeouts(self: pull.ContinuousPull, status: str, headers: Any) -> None:
        if status != "408":  # the server's word that a request expired never comes
            await original(self, status, headers)

    monkeypatch.setattr(pull.ContinuousPull, "_on_status", lose_timeouts)
    stream = nats.stream_name()
    await nats.store.create_stream(stream)
    reader = await reader_for(nats, stream, 0)
    await asyncio.sleep(1.0)  # the requests have expired; the reader still counts on them
    await nats.store.put(stream, event(1), partition_key="k")
    assert numbers(await read_until(reader, 1)) == [1]
    await reader.close()


async def test_a_reader_whose_consumer_is_deleted_is_not_found(nats: Backend) -> None:
    from reelscale.events.nats import NatsEventStore

    store = nats.store
    assert isinstance(store, NatsEventStore)
    stream = nats.stream_name()
    await store.create_stream(stream)
    reader = await reader_for(nats, stream, 0, group="g")
    assert await reader.read(max_records=10, wait_s=0.1) == []
    await store.js.delete_consumer(stream, "g_0")

    async def read_on() -> None:
        for _ in range(20):
            await reader.read(max_records=10, wait_s=0.2)

    with pytest.raises(NotFound):
        await read_on()
    await reader.close()


async def test_puts_waiting_for_an_expired_shard_map_share_one_reload(
    nats: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reelscale.events.nats import NatsEventStore
    from reelscale.events.nats import store as store_module

    store = nats.store
    assert isinstance(store, NatsEventStore)
    stream = nats.stream_name()
    await store.create_stream(stream, shards=2)
    loads = 0
    original = store._load

    async def counted(name: str) -> Any:
        nonlocal loads
        loads += 1
        return await original(name)

    monkeypatch.setattr(store, "_load", counted)
    monkeypatch.setattr(store_module, "MAP_TTL_S", 0.0)  # every call finds it expired
    maps = await asyncio.gather(*(store.shard_map(stream) for _ in range(200)))
    assert loads == 1
    assert all(m == maps[0] for m in maps)
    await store.shard_map(stream, fresh=True)  # fresh: loaded after the call, its own
    assert loads == 2
    records = await asyncio.gather(
        *(store.put(stream, event(n), partition_key=f"k{n}") for n in range(100))
    )
    assert len({r.sequence for r in records}) == 100
    assert loads <= 3  # not one per put

    missing = nats.stream_name()
    results = await asyncio.gather(
        *(store.shard_map(missing) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, NotFound) for r in results)


async def test_consumers_are_dropped_by_the_server_when_nobody_pulls(nats: Backend) -> None:
    # Progress lives in the KV checkpoint and every subscribe recreates the consumer from
    # it, so the server may drop consumers left behind (a per-process group whose process
    # has gone): they carry an inactivity threshold.
    from reelscale.events.nats import NatsEventStore
    from reelscale.events.nats.reader import CONSUMER_INACTIVE_S

    store = nats.store
    assert isinstance(store, NatsEventStore)
    stream = nats.stream_name()
    await store.create_stream(stream)
    reader = await reader_for(nats, stream, 0, group="g")
    info = await store.js.consumer_info(stream, "g_0")
    assert info.config.inactive_threshold == pytest.approx(CONSUMER_INACTIVE_S)
    await reader.close()
