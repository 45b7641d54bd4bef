"""The embedded event store: streams as segmented logs in a local directory.

    <root>/LOCK              held (flock) by the one process that owns the store
    <root>/checkpoints.db    consumer-group checkpoints (SQLite, WAL)
    <root>/streams/<name>/   one stream (see `streamlog`)

One process owns the directory, so it is the only writer; puts from all its tasks go
through one group committer. Readers in the same process see records as soon as their
fsync returns.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from reelscale.core.clock import Clock
from reelscale.core.errors import BadRequest, Conflict, NotFound, Overloaded
from reelscale.events.embedded.checkpoints import CheckpointTable
from reelscale.events.embedded.committer import GroupCommitter, Prepared
from reelscale.events.embedded.reader import EmbeddedShardReader
from reelscale.events.embedded.streamlog import StreamLog, from_us, to_us
from reelscale.events.records import (
    MAX_EVENT_BYTES,
    PutEntry,
    Record,
    ShardLag,
    StartAt,
    StreamInfo,
    check_name,
    check_retention,
    check_shard_count,
    encode_entry,
)
from reelscale.events.shardmap import ShardMap
from reelscale.events.store import DEFAULT_IDEMPOTENCY_WINDOW_S, EventStore, ShardReader

DEFAULT_SEGMENT_BYTES = 32 * 1024 * 1024
MAX_QUEUED_EVENTS = 500_000  # beyond this, puts are refused (503) instead of eating memory


class EmbeddedEventStore(EventStore):
    name = "events.embedded"

    def __init__(
        self,
        directory: Path,
        *,
        clock: Clock | None = None,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
        idempotency_window_s: float = DEFAULT_IDEMPOTENCY_WINDOW_S,
        retention_interval_s: float = 5.0,
    ) -> None:
        super().__init__(
            clock=clock, max_event_bytes=max_event_bytes, idempotency_window_s=idempotency_window_s
        )
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.checkpoints = CheckpointTable(directory / "checkpoints.db")
        self._streams: dict[str, StreamLog] = {}
        self._readers: dict[tuple[str, str, int], EmbeddedShardReader] = {}
        self._lock_fd = -1
        self._creating: set[asyncio.Future[StreamLog]] = set()
        self.committer = GroupCommitter(
            clock=self.clock,
            segment_bytes=segment_bytes,
            dedup_window_s=idempotency_window_s,
            max_queued=MAX_QUEUED_EVENTS,
        )
        self.every("retention", retention_interval_s, self.enforce_retention)

    # -- lifecycle ------------------------------------------------------------------------

    async def on_start(self) -> None:
        streams_dir = self.directory / "streams"
        streams_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise Conflict(f"another process owns the event store at {self.directory}") from exc
        self.checkpoints.open()
        now_us = to_us(self.clock.now())
        for directory in sorted(streams_dir.iterdir()):
            if directory.name.startswith("."):
                continue
            stream_log = StreamLog.load(
                directory, dedup_window_s=self.idempotency_window_s, now_us=now_us
            )
            if stream_log is not None:
                self._streams[stream_log.name] = stream_log
        self.committer.start()

    async def on_stop(self) -> None:
        if self._creating:  # let a stream being made finish, so it is closed below
            await asyncio.gather(*self._creating, return_exceptions=True)
        await self.committer.stop()
        for reader in list(self._readers.values()):
            await reader.close()
        for stream_log in self._streams.values():
            for shard in stream_log.logs:
                stream_log.notify(shard)  # readers waiting for records learn they are closed
        for stream_log in self._streams.values():
            stream_log.close()
        self._streams.clear()
        self.checkpoints.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    @property
    def repaired_bytes(self) -> int:
        """Bytes of torn tail that recovery cut off when the store opened."""
        return sum(
            shard_log.repaired_bytes
            for stream_log in self._streams.values()
            for shard_log in stream_log.logs.values()
        )

    # -- streams --------------------------------------------------------------------------

    def _stream(self, name: str) -> StreamLog:
        if self._lock_fd < 0:
            raise Overloaded("the event store is not running", retry_after=1)
        stream_log = self._streams.get(name)
        if stream_log is None:
            raise NotFound(f"no stream {name!r}")
        return stream_log

    async def create_stream(
        self,
        name: str,
        *,
        shards: int = 1,
        max_age_s: float | None = None,
        max_bytes: int | None = None,
    ) -> StreamInfo:
        check_name("stream", name)
        check_shard_count(shards)
        check_retention(max_age_s, max_bytes)
        async with self.committer.exclusive():
            stream_log = self._streams.get(name)
            if stream_log is None:
                # Shielded: a caller cancelled mid-way (a stopping function) must not leave
                # a stream made on disk but unknown here, with its files open for good.
                creation = asyncio.ensure_future(
                    self._create_log(name, shards=shards, max_age_s=max_age_s, max_bytes=max_bytes)
                )
                self._creating.add(creation)
                creation.add_done_callback(self._creating.discard)
                stream_log = await asyncio.shield(creation)
            else:
                if len(stream_log.shard_map.open_shards) != shards:
                    raise Conflict(
                        f"stream {name!r} has {len(stream_log.shard_map.open_shards)} shards; "
                        "use reshard to change that"
                    )
                if (stream_log.max_age_s, stream_log.max_bytes) != (max_age_s, max_bytes):
                    stream_log.max_age_s, stream_log.max_bytes = max_age_s, max_bytes
                    stream_log.save_meta()
            return _info(stream_log)

    async def _create_log(
        self, name: str, *, shards: int, max_age_s: float | None, max_bytes: int | None
    ) -> StreamLog:
        stream_log = await asyncio.to_thread(
            StreamLog.create,
            name,
            self.directory / "streams" / name,
            shards=shards,
            max_age_s=max_age_s,
            max_bytes=max_bytes,
        )
        self._streams[name] = stream_log
        return stream_log

    async def describe_stream(self, name: str) -> StreamInfo:
        return _info(self._stream(name))

    async def list_streams(self) -> list[str]:
        return sorted(self._streams)

    async def delete_stream(self, name: str) -> None:
        async with self.committer.exclusive():
            stream_log = self._stream(name)
            del self._streams[name]
            for key in [key for key in self._readers if key[0] == name]:
                self._readers.pop(key)
            await asyncio.to_thread(stream_log.destroy)
            self.checkpoints.delete_stream(name)

    async def reshard(self, name: str, *, shards: int) -> StreamInfo:
        check_shard_count(shards)
        async with self.committer.exclusive():  # no batch is half-routed while the map changes
            stream_log = self._stream(name)
            await asyncio.to_thread(stream_log.reshard, shards)
            return _info(stream_log)

    async def shard_map(self, name: str) -> ShardMap:
        return self._stream(name).shard_map

    async def enforce_retention(self) -> None:
        """Delete segments past their stream's age or size limit (also runs on a timer)."""
        async with self.committer.exclusive():
            now_us = to_us(self.clock.now())
            for stream_log in list(self._streams.values()):
                stream_log.enforce_retention(now_us)

    # -- writes ---------------------------------------------------------------------------

    async def put_batch(self, stream: str, entries: Sequence[PutEntry]) -> list[Record]:
        stream_log = self._stream(stream)
        if not entries:
            return []
        limit = self.max_event_bytes
        prepared: list[Prepared] = []
        for entry in entries:
            encoded = encode_entry(entry, max_event_bytes=limit)
            key = encoded.partition_key.encode()
            idem = encoded.idempotency_key.encode() if encoded.idempotency_key else b""
            prepared.append((encoded, key + idem + encoded.payload, len(key), len(idem)))
        return await self.committer.submit(stream_log, prepared)

    # -- reads ----------------------------------------------------------------------------

    async def _open_reader(
        self,
        stream: str,
        *,
        group: str,
        shard: int,
        start: StartAt,
        ack_wait_s: float,
        parents: tuple[int, ...],
    ) -> ShardReader:
        stream_log = self._stream(stream)
        key = (stream, group, shard)
        if key in self._readers:
            raise Conflict(f"group {group!r} already has a reader on {stream}/{shard}")
        reader = EmbeddedShardReader(
            self,
            stream_log,
            checkpoints=self.checkpoints,
            on_close=self.forget_reader,
            group=group,
            shard=shard,
            start=start,
            ack_wait_s=ack_wait_s,
            parents=parents,
        )
        self._readers[key] = reader
        return reader

    def forget_reader(self, reader: EmbeddedShardReader) -> None:
        key = (reader.stream, reader.group, reader.shard)
        if self._readers.get(key) is reader:
            del self._readers[key]

    async def load_checkpoint(self, stream: str, *, group: str, shard: int) -> int | None:
        self._stream(stream).log(shard)
        return self.checkpoints.get(stream, group, shard)

    async def shard_tail(self, stream: str, shard: int) -> tuple[int, datetime] | None:
        shard_log = self._stream(stream).log(shard)
        if shard_log.first_sequence >= shard_log.committed_end:
            return None
        last = shard_log.committed_end - 1
        ts = shard_log.active.last_ts_us
        if ts is None:  # the newest record sits in an older segment (after a roll)
            record = self._stream(stream).record_at(shard, last)
            return (last, record.timestamp) if record else None
        return last, from_us(ts)

    async def lag(self, stream: str, *, group: str) -> list[ShardLag]:
        check_name("group", group)
        stream_log = self._stream(stream)
        checkpoints = self.checkpoints.for_group(stream, group)
        now = self.clock.now()
        out = []
        for shard, shard_log in sorted(stream_log.logs.items()):
            checkpoint = checkpoints.get(shard)
            oldest_unread = max(shard_log.first_sequence, (checkpoint or 0) + 1)
            behind = max(0, shard_log.committed_end - oldest_unread)
            age = 0.0
            if behind:
                record = stream_log.record_at(shard, oldest_unread)
                if record is not None:
                    age = max(0.0, (now - record.timestamp).total_seconds())
            out.append(ShardLag(shard, behind, age, checkpoint))
        return out


def _info(stream_log: StreamLog) -> StreamInfo:
    if stream_log.deleted:
        raise BadRequest(f"stream {stream_log.name!r} is being deleted")
    shard_map = stream_log.shard_map
    return StreamInfo(
        name=stream_log.name,
        shards=[s.id for s in shard_map.open_shards],
        closed_shards=[s.id for s in shard_map.closed_shards],
        max_age_s=stream_log.max_age_s,
        max_bytes=stream_log.max_bytes,
    )
