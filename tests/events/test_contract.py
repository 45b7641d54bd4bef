"""The stream contract, run against every backend (see conftest's `backend` fixture)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from tests.events.conftest import Backend, drain, entries, event, read_exactly, reader_for

from reelscale.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from reelscale.events.consumer import GroupConsumer
from reelscale.events.records import PutEntry, Record, StartAt
from reelscale.events.shardmap import key_hash

pytestmark = pytest.mark.asyncio

KEYS = [f"member-{i}" for i in range(12)]


async def read_all_shards(backend: Backend, stream: str, group: str = "g") -> list[Record]:
    consumer = GroupConsumer(backend.store, stream, group=group)
    out: list[Record] = []
    try:
        for _ in range(50):
            batch = await consumer.poll()
            out.extend(batch)
            if not batch and not consumer.readers:
                break
            if not batch:
                await asyncio.sleep(0.05)
                # stop once two passes in a row find nothing
                if not await consumer.poll():
                    break
    finally:
        await consumer.close()
    return out


def by_key(records: list[Record]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for record in records:
        grouped[record.partition_key].append(record.event.data["n"])
    return grouped


async def test_order_holds_per_key_and_a_key_stays_on_one_shard(backend: Backend) -> None:
    stream = backend.stream_name()
    info = await backend.store.create_stream(stream, shards=4)
    assert info.shards == [0, 1, 2, 3]
    puts = [backend.store.put(stream, event(n), partition_key=KEYS[n % 12]) for n in range(120)]
    records = [await p for p in puts]
    shard_of: dict[str, int] = {}
    for record in records:
        assert shard_of.setdefault(record.partition_key, record.shard) == record.shard
    assert len(set(shard_of.values())) > 1  # 12 keys spread over the shards

    read = []
    for shard in info.shards:
        reader = await reader_for(backend, stream, shard)
        got = await drain(reader)
        assert [r.sequence for r in got] == sorted(r.sequence for r in got)
        assert all(r.shard == shard for r in got)
        read.extend(got)
        await reader.close()
    assert dict(by_key(read)) == {
        key: [n for n in range(120) if KEYS[n % 12] == key] for key in KEYS
    }


async def test_shards_come_from_a_stable_hash(backend: Backend) -> None:
    # blake2b, not Python's salted hash(): the same key maps the same way in every process.
    assert key_hash("member-1") == 0xF4E9CEAE644084C4
    stream = backend.stream_name()
    await backend.store.create_stream(stream, shards=3)
    router = (await backend.store.shard_map(stream)).router()
    for key in KEYS:
        record = await backend.store.put(stream, event(), partition_key=key)
        assert record.shard == router.shard_for(key)


async def test_put_batch_returns_one_record_per_entry_in_order(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream, shards=2)
    batch = entries(50, keys=KEYS)
    records = await backend.store.put_batch(stream, batch)
    assert [r.event.id for r in records] == [e.event.id for e in batch]  # type: ignore[union-attr]
    last: dict[int, int] = {}
    for record in records:
        assert record.sequence > last.get(record.shard, 0)
        last[record.shard] = record.sequence
    assert await backend.store.put_batch(stream, []) == []


async def test_a_repeated_idempotency_key_returns_the_original_and_stores_nothing(
    backend: Backend,
) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream)
    first = await backend.store.put(stream, event(1), partition_key="k", idempotency_key="op-1")
    again = await backend.store.put(stream, event(2), partition_key="k", idempotency_key="op-1")
    assert (again.shard, again.sequence, again.event) == (first.shard, first.sequence, first.event)
    batch = await backend.store.put_batch(
        stream,
        [
            PutEntry(event(3), "k", "op-2"),
            PutEntry(event(4), "k", "op-2"),  # a repeat inside one batch
            PutEntry(event(5), "k", "op-1"),
        ],
    )
    assert batch[0].sequence == batch[1].sequence
    assert batch[2].sequence == first.sequence
    reader = await reader_for(backend, stream, 0)
    assert [r.event.data["n"] for r in await drain(reader)] == [1, 3]


async def test_every_start_position(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream)
    early = await backend.store.put_batch(stream, entries(3))
    await backend.let_time_pass(0.05)
    late = await backend.store.put_batch(stream, entries(3, start=3))
    stored = await drain(await reader_for(backend, stream, 0, group="all"))
    assert [r.event.data["n"] for r in stored] == [0, 1, 2, 3, 4, 5]

    latest = await reader_for(backend, stream, 0, group="latest", start=StartAt.latest())
    assert await latest.read(max_records=10) == []
    await backend.store.put(stream, event(6), partition_key="k")
    assert [r.event.data["n"] for r in await drain(latest)] == [6]

    at_seq = await reader_for(
        backend, stream, 0, group="at-seq", start=StartAt.at_sequence(early[2].sequence)
    )
    assert [r.event.data["n"] for r in await drain(at_seq)] == [2, 3, 4, 5, 6]

    at_time = await reader_for(
        backend, stream, 0, group="at-time", start=StartAt.at_timestamp(stored[3].timestamp)
    )
    assert [r.event.data["n"] for r in await drain(at_time)] == [3, 4, 5, 6]
    assert late[0].sequence == stored[3].sequence


async def test_a_checkpoint_survives_a_restart_and_nothing_is_lost(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream)
    await backend.store.put_batch(stream, entries(10))
    reader = await reader_for(backend, stream, 0)
    got = await read_exactly(reader, 10)
    assert len(got) == 10
    await reader.checkpoint(got[3].sequence)  # processed 0..3, then the consumer dies
    await reader.close()

    again = await reader_for(backend, stream, 0)
    assert again.checkpointed == got[3].sequence
    redelivered = await drain(again)
    assert [r.event.data["n"] for r in redelivered] == [4, 5, 6, 7, 8, 9]
    # a rewind goes back to the checkpoint
    await again.rewind()
    assert await drain(again) == []


async def test_unacked_records_come_again_and_other_shards_go_on(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream, shards=2)
    router = (await backend.store.shard_map(stream)).router()
    keys = {router.shard_for(k): k for k in KEYS}
    for n in range(6):
        await backend.store.put(stream, event(n), partition_key=keys[n % 2])

    stuck = await reader_for(backend, stream, 0, group="g", ack_wait_s=1.0)
    healthy = await reader_for(backend, stream, 1, group="g", ack_wait_s=1.0)
    first = await read_exactly(stuck, 3)
    assert [r.event.data["n"] for r in first] == [0, 2, 4]  # and never acknowledged
    assert [r.event.data["n"] for r in await drain(healthy)] == [1, 3, 5]

    await backend.let_time_pass(1.3)
    again = []
    for _ in range(20):
        again += await stuck.read(max_records=10, wait_s=0.3)
        if len(again) >= 3:
            break
    assert [r.event.data["n"] for r in again] == [0, 2, 4]
    await backend.store.put(stream, event(7), partition_key=keys[1])
    assert [r.event.data["n"] for r in await drain(healthy)] == [7]
    lag = {entry.shard: entry for entry in await backend.store.lag(stream, group="g")}
    assert lag[0].records == 3
    assert lag[0].checkpoint is None
    assert lag[1].records == 0


async def test_retention_by_age(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream, max_age_s=1.0)
    await backend.store.put_batch(stream, entries(5))
    await backend.let_time_pass(1.5)
    await backend.store.put(stream, event(99), partition_key="k")
    for _ in range(40):
        kept = await drain(await reader_for(backend, stream, 0, group=f"r{_}"), checkpoint=False)
        if [r.event.data["n"] for r in kept] == [99]:
            break
        await backend.let_time_pass(0.1)
    assert [r.event.data["n"] for r in kept] == [99]
    assert (await backend.store.describe_stream(stream)).max_age_s == 1.0


async def test_retention_by_size(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream, max_bytes=16 * 1024)
    for start in range(0, 200, 20):
        await backend.store.put_batch(stream, entries(20, start=start))
    await backend.store.enforce_retention()
    kept = await drain(await reader_for(backend, stream, 0), checkpoint=False)
    numbers = [r.event.data["n"] for r in kept]
    assert 20 < len(numbers) < 200
    assert numbers == list(range(200 - len(numbers), 200))  # the newest, in order


async def test_lag_counts_records_after_the_checkpoint(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream)
    await backend.store.put_batch(stream, entries(10))
    (before,) = await backend.store.lag(stream, group="g")
    assert (before.records, before.checkpoint) == (10, None)
    await backend.let_time_pass(0.3)
    reader = await reader_for(backend, stream, 0)
    got = await read_exactly(reader, 10)
    await reader.checkpoint(got[3].sequence)
    (during,) = await backend.store.lag(stream, group="g")
    assert during.records == 6
    assert during.checkpoint == got[3].sequence
    assert during.iterator_age_s >= 0.25
    await reader.checkpoint(got[-1].sequence)
    (after,) = await backend.store.lag(stream, group="g")
    assert (after.records, after.iterator_age_s) == (0, 0.0)


async def test_resharding_keeps_order_per_key(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream, shards=2)
    await backend.store.put_batch(stream, entries(60, keys=KEYS))
    info = await backend.store.reshard(stream, shards=4)
    assert (info.shards, info.closed_shards) == ([2, 3, 4, 5], [0, 1])
    after = await backend.store.put_batch(stream, entries(60, keys=KEYS, start=60))
    assert {r.shard for r in after} <= {2, 3, 4, 5}

    records = await read_all_shards(backend, stream)
    expected = {key: [n for n in range(120) if KEYS[n % 12] == key] for key in KEYS}
    assert dict(by_key(records)) == expected

    # and a child hands out nothing while its parent still has unread records
    child = (await backend.store.shard_map(stream)).get(after[0].shard)
    fresh = await reader_for(backend, stream, child.id, group="late")
    assert await fresh.read(max_records=10) == []


async def test_an_oversized_event_is_refused_and_nothing_is_stored(backend: Backend) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream)
    with pytest.raises(PayloadTooLarge):
        await backend.store.put(stream, event(size=1_100_000), partition_key="k")
    with pytest.raises(PayloadTooLarge):
        await backend.store.put_batch(
            stream, [PutEntry(event(1), "k"), PutEntry(event(size=1_100_000), "k")]
        )
    assert (await backend.store.lag(stream, group="g"))[0].records == 0


async def test_an_unknown_stream_or_shard_is_not_found(backend: Backend) -> None:
    store = backend.store
    missing = backend.stream_name()
    with pytest.raises(NotFound):
        await store.put(missing, event(), partition_key="k")
    with pytest.raises(NotFound):
        await store.put_batch(missing, [])
    with pytest.raises(NotFound):
        await store.describe_stream(missing)
    with pytest.raises(NotFound):
        await store.open_reader(missing, group="g", shard=0)
    with pytest.raises(NotFound):
        await store.lag(missing, group="g")
    with pytest.raises(NotFound):
        await store.delete_stream(missing)
    stream = backend.stream_name()
    await store.create_stream(stream)
    with pytest.raises(NotFound):
        await store.open_reader(stream, group="g", shard=7)


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "1", "source": "s", "time": "2026-01-01T00:00:00Z"},  # no type
        {"specversion": "0.3", "id": "1", "source": "s", "type": "t", "time": "2026-01-01T00:00Z"},
        {"id": "", "source": "s", "type": "t", "time": "2026-01-01T00:00:00Z"},
        {"id": "1", "source": "s", "type": "Has Spaces", "time": "2026-01-01T00:00:00Z"},
        {"id": "1", "source": "s", "type": "t", "time": "yesterday"},
        {"id": "1", "source": "s", "type": "t", "time": "2026-01-01T00:00:00Z", "extra": 1},
        {"id": "1", "source": "s", "type": "t", "time": "2026-01-01T00:00:00Z", "data": [1]},
    ],
)
async def test_a_malformed_envelope_is_a_bad_request(
    backend: Backend, bad: dict[str, object]
) -> None:
    stream = backend.stream_name()
    await backend.store.create_stream(stream)
    with pytest.raises(BadRequest):
        await backend.store.put(stream, bad, partition_key="k")
    good = {"id": "1", "source": "s", "type": "t", "time": "2026-01-01T00:00:00Z"}
    with pytest.raises(BadRequest):  # one bad entry fails the whole batch
        await backend.store.put_batch(stream, [PutEntry(good, "k"), PutEntry(bad, "k")])
    record = await backend.store.put(stream, good, partition_key="k")
    assert record.event.type == "t"
    assert (await backend.store.lag(stream, group="g"))[0].records == 1


async def test_other_bad_input_is_a_bad_request(backend: Backend) -> None:
    store = backend.store
    stream = backend.stream_name()
    await store.create_stream(stream)
    with pytest.raises(BadRequest):
        await store.put(stream, event(), partition_key="")
    with pytest.raises(BadRequest):
        await store.put(stream, event(), partition_key="k" * 300)
    with pytest.raises(BadRequest):
        await store.put(stream, event(), partition_key="k", idempotency_key="x" * 200)
    with pytest.raises(BadRequest):
        await store.put(stream, event(blob={1, 2}), partition_key="k")  # not JSON
    with pytest.raises(BadRequest):
        await store.create_stream("Bad Name")
    with pytest.raises(BadRequest):
        await store.create_stream(backend.stream_name(), shards=0)
    with pytest.raises(BadRequest):
        await store.create_stream(backend.stream_name(), max_age_s=-1)
    with pytest.raises(BadRequest):
        await store.open_reader(stream, group="Bad Group", shard=0)
    reader = await reader_for(backend, stream, 0)
    with pytest.raises(BadRequest):  # cannot checkpoint what was never read
        await reader.checkpoint(1)
    with pytest.raises(BadRequest):
        await reader.read(max_records=0)


async def test_streams_are_created_once_listed_and_deleted(backend: Backend) -> None:
    store = backend.store
    stream = backend.stream_name()
    await store.create_stream(stream, shards=2)
    info = await store.create_stream(stream, shards=2, max_bytes=1 << 20)  # ensure: updates
    assert info.max_bytes == 1 << 20
    with pytest.raises(Conflict):
        await store.create_stream(stream, shards=3)
    assert stream in await store.list_streams()
    await store.put(stream, event(), partition_key="k")
    await store.delete_stream(stream)
    assert stream not in await store.list_streams()
    with pytest.raises(NotFound):
        await store.put(stream, event(), partition_key="k")
