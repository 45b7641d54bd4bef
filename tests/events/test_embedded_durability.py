"""The embedded log on disk: recovery, torn tails, corruption, restarts, crashes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from tests.events.conftest import drain, embedded_backend, entries, event

from reelscale.core.errors import Conflict, NotFound, Overloaded
from reelscale.events.bench import crash_async
from reelscale.events.embedded import EmbeddedEventStore
from reelscale.events.embedded.frames import HEADER_SIZE, CorruptLog
from reelscale.events.records import PutEntry, StartAt

pytestmark = pytest.mark.asyncio


def segments(root: Path, stream: str, shard: int = 0) -> list[Path]:
    directory = root / "streams" / stream / f"shard-{shard}"
    return sorted(directory.glob("*.seg"), key=lambda p: int(p.stem))


async def numbers(store: EmbeddedEventStore, stream: str, *, group: str = "check") -> list[int]:
    reader = await store.open_reader(stream, group=group, shard=0)
    try:
        return [r.event.data["n"] for r in await drain(reader, checkpoint=False, wait_s=0)]
    finally:
        await reader.close()


async def test_a_torn_tail_is_cut_off_and_earlier_records_stay(tmp_path: Path) -> None:
    root = tmp_path / "events"
    async with embedded_backend(root) as b:
        await b.store.create_stream("s")
        records = await b.store.put_batch("s", entries(5))
    (last,) = segments(root, "s")
    with last.open("r+b") as handle:  # the crash hit while the 5th record was being written
        handle.truncate(last.stat().st_size - 10)
    async with embedded_backend(root) as b:
        store = b.store
        assert isinstance(store, EmbeddedEventStore)
        assert store.repaired_bytes > 0
        assert await numbers(store, "s") == [0, 1, 2, 3]
        again = await store.put(stream="s", event=event(5), partition_key="k")
        assert again.sequence == records[4].sequence  # the torn record was never acked
        assert await numbers(store, "s", group="after") == [0, 1, 2, 3, 5]


async def test_a_bad_checksum_in_the_tail_is_cut_off(tmp_path: Path) -> None:
    root = tmp_path / "events"
    async with embedded_backend(root) as b:
        await b.store.create_stream("s")
        await b.store.put_batch("s", entries(4))
    (last,) = segments(root, "s")
    data = bytearray(last.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte in the last record's body
    last.write_bytes(bytes(data))
    async with embedded_backend(root) as b:
        assert await numbers(b.store, "s") == [0, 1, 2]  # type: ignore[arg-type]


async def test_garbage_after_the_last_record_is_cut_off(tmp_path: Path) -> None:
    root = tmp_path / "events"
    async with embedded_backend(root) as b:
        await b.store.create_stream("s")
        await b.store.put_batch("s", entries(3))
    (last,) = segments(root, "s")
    with last.open("ab") as handle:
        handle.write(os.urandom(HEADER_SIZE + 5))
    async with embedded_backend(root) as b:
        assert await numbers(b.store, "s") == [0, 1, 2]  # type: ignore[arg-type]
        await b.store.put("s", event(3), partition_key="k")
        assert await numbers(b.store, "s", group="again") == [0, 1, 2, 3]  # type: ignore[arg-type]


async def test_damage_to_a_sealed_segment_is_reported_not_skipped(tmp_path: Path) -> None:
    root = tmp_path / "events"
    async with embedded_backend(root, segment_bytes=1024) as b:
        await b.store.create_stream("s")
        for n in range(10):
            await b.store.put_batch("s", entries(2, start=2 * n))
    first = segments(root, "s")[0]
    data = bytearray(first.read_bytes())
    data[HEADER_SIZE + 4] ^= 0xFF
    first.write_bytes(bytes(data))
    async with embedded_backend(root, segment_bytes=1024) as b:
        reader = await b.store.open_reader("s", group="g", shard=0)
        with pytest.raises(CorruptLog):
            await reader.read(max_records=100)


async def test_everything_survives_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "events"
    async with embedded_backend(root, segment_bytes=2048) as b:
        await b.store.create_stream("s", shards=2, max_age_s=3600)
        first = await b.store.put("s", event(1), partition_key="k", idempotency_key="op-1")
        await b.store.put_batch("s", entries(40, start=2))
        await b.store.reshard("s", shards=3)
        reader = await b.store.open_reader("s", group="g", shard=first.shard)
        got = await reader.read(max_records=5)
        await reader.checkpoint(got[2].sequence)
    async with embedded_backend(root, segment_bytes=2048) as b:
        store = b.store
        info = await store.describe_stream("s")
        assert (info.shards, info.closed_shards, info.max_age_s) == ([2, 3, 4], [0, 1], 3600)
        assert await store.load_checkpoint("s", group="g", shard=first.shard) == got[2].sequence
        # the dedup window is rebuilt from the log
        again = await store.put("s", event(9), partition_key="k", idempotency_key="op-1")
        assert again == first


async def test_only_one_process_owns_a_store(tmp_path: Path) -> None:
    async with embedded_backend(tmp_path) as b:
        other = EmbeddedEventStore(tmp_path)
        with pytest.raises(Conflict):
            await other.start()
        await b.store.create_stream("s")


async def test_a_clean_stop_answers_every_queued_put(tmp_path: Path) -> None:
    store = EmbeddedEventStore(tmp_path)
    await store.start()
    await store.create_stream("s")
    puts = [asyncio.create_task(store.put("s", event(n), partition_key="k")) for n in range(200)]
    await asyncio.sleep(0)  # queued, not yet written
    await store.stop()
    records = await asyncio.gather(*puts)
    assert [r.sequence for r in records] == list(range(1, 201))
    with pytest.raises(Overloaded):
        await store.put("s", event(), partition_key="k")
    async with embedded_backend(tmp_path) as b:
        assert len(await numbers(b.store, "s")) == 200  # type: ignore[arg-type]


async def test_segments_roll_and_positions_work_across_them(tmp_path: Path) -> None:
    root = tmp_path / "events"
    async with embedded_backend(root, segment_bytes=2048) as b:
        store = b.store
        await store.create_stream("s")
        for n in range(0, 600, 30):
            await store.put_batch("s", entries(30, start=n))
        assert len(segments(root, "s")) > 10
        reader = await store.open_reader("s", group="g", shard=0, start=StartAt.at_sequence(451))
        assert [r.event.data["n"] for r in await drain(reader)][:3] == [450, 451, 452]
        assert await numbers(store, "s") == list(range(600))  # type: ignore[arg-type]


async def test_expired_segments_never_reset_sequence_numbers(tmp_path: Path) -> None:
    root = tmp_path / "events"
    async with embedded_backend(root) as b:
        await b.store.create_stream("s", max_age_s=10)
        before = await b.store.put_batch("s", entries(5))
        await b.let_time_pass(60)  # everything expires, the active segment included
        assert await numbers(b.store, "s") == []  # type: ignore[arg-type]
    async with embedded_backend(root) as b:
        after = await b.store.put("s", event(5), partition_key="k")
        assert after.sequence == before[-1].sequence + 1
        (lag,) = await b.store.lag("s", group="g")
        assert lag.records == 1


async def test_a_reader_carries_on_when_retention_deletes_its_segment(tmp_path: Path) -> None:
    async with embedded_backend(tmp_path, segment_bytes=1024) as b:
        await b.store.create_stream("s", max_bytes=4096)
        reader = await b.store.open_reader("s", group="g", shard=0)
        await b.store.put_batch("s", entries(3))
        assert len(await reader.read(max_records=1)) == 1
        for n in range(3, 200, 10):
            await b.store.put_batch("s", [PutEntry(event(n + i), "k") for i in range(10)])
        rest = await drain(reader)
        assert rest[-1].event.data["n"] == 202
        assert len(rest) < 200  # the start was deleted under it; it went on from what is kept
        assert [r.sequence for r in rest] == sorted(r.sequence for r in rest)


@pytest.mark.slow
async def test_killed_writers_lose_no_acknowledged_record(tmp_path: Path) -> None:
    result = await crash_async(kills=6, directory=tmp_path, seed=7, max_alive_s=0.3)
    assert result["kills"] == 6
    assert result["acked"] > 0
    assert (result["lost"], result["corrupt"]) == (0, 0)


async def test_a_waiting_reader_learns_the_store_stopped(tmp_path: Path) -> None:
    store = EmbeddedEventStore(tmp_path)
    await store.start()
    await store.create_stream("s")
    reader = await store.open_reader("s", group="g", shard=0)
    waiting = asyncio.create_task(reader.read(max_records=10, wait_s=5))
    await asyncio.sleep(0.05)
    await store.stop()
    with pytest.raises(NotFound):
        await asyncio.wait_for(waiting, 1)


async def test_a_reader_of_a_deleted_stream_gets_not_found(tmp_path: Path) -> None:
    async with embedded_backend(tmp_path) as b:
        await b.store.create_stream("s")
        reader = await b.store.open_reader("s", group="g", shard=0)
        await b.store.delete_stream("s")
        with pytest.raises(NotFound):
            await reader.read(max_records=10)
        assert await b.store.list_streams() == []
