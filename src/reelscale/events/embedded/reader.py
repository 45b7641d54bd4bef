"""Reading one shard of the embedded log for a consumer group."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from reelscale.core.errors import BadRequest, NotFound
from reelscale.events.embedded.checkpoints import CheckpointTable
from reelscale.events.embedded.segments import Segment, ShardLog
from reelscale.events.embedded.streamlog import StreamLog, to_us
from reelscale.events.records import Record, StartAt, StartPosition
from reelscale.events.store import EventStore, ShardReader

_BYTES_PER_RECORD_GUESS = 512  # sizes a read so that one pread usually fills a batch
_MIN_READ = 64 * 1024
_MAX_READ = 4 * 1024 * 1024


class EmbeddedShardReader(ShardReader):
    """Hands out a shard's acknowledged records in order, from a file position.

    It sees only records whose fsync has returned, so nothing it delivers can vanish in
    a crash. If retention deletes the segment it is in, it carries on from the oldest
    segment left: like Kinesis, records that expire unread are gone.
    """

    def __init__(
        self,
        store: EventStore,
        stream_log: StreamLog,
        *,
        checkpoints: CheckpointTable,
        on_close: Callable[[EmbeddedShardReader], None],
        group: str,
        shard: int,
        start: StartAt,
        ack_wait_s: float,
        parents: tuple[int, ...],
    ) -> None:
        super().__init__(
            store,
            stream_log.name,
            group=group,
            shard=shard,
            start=start,
            ack_wait_s=ack_wait_s,
            parents=parents,
        )
        self._checkpoints = checkpoints
        self._on_close = on_close
        self._stream_log = stream_log
        self._log: ShardLog = stream_log.log(shard)
        self.checkpointed = checkpoints.get(stream_log.name, group, shard)
        # The first sequence this group wants from the shard when it has no checkpoint;
        # resolved once, so a rewind before any checkpoint returns to the same place.
        self._origin = self._resolve(start)
        self._segment: Segment = self._log.segments[0]
        self._offset = 0
        self._next = 0  # skip frames below this sequence (positioning inside a segment)
        self._unacked_since: float | None = None
        self._closed = False
        self._seek(self._resume_at())

    def _resolve(self, start: StartAt) -> int:
        shard_log = self._log
        if start.position is StartPosition.LATEST:
            return shard_log.committed_end
        if start.position is StartPosition.AT_SEQUENCE:
            return start.sequence or 1
        if start.position is StartPosition.AT_TIMESTAMP and start.timestamp is not None:
            wanted = to_us(start.timestamp)
            segment = shard_log.segments[shard_log.segment_for_timestamp(wanted)]
            offset = segment.seek(timestamp_us=wanted)
            for frame, _, _ in segment.frames_from(offset):
                return frame[2]
            index = shard_log.segments.index(segment)
            later = shard_log.segments[index + 1 :]
            return later[0].base if later else shard_log.committed_end
        return shard_log.first_sequence

    def _resume_at(self) -> int:
        return self.checkpointed + 1 if self.checkpointed is not None else self._origin

    def _seek(self, sequence: int) -> None:
        shard_log = self._log
        segment = shard_log.segments[shard_log.segment_for_sequence(sequence)]
        self._segment = segment
        self._next = sequence
        self._offset = segment.seek(sequence=sequence) if sequence > segment.base else 0

    async def _read(self, max_records: int, wait_s: float) -> list[Record]:
        if self._closed:
            raise NotFound("reader is closed")
        clock = self.store.clock
        if self.overdue(self._unacked_since, clock.monotonic()):
            await self.rewind()  # read long ago and never checkpointed: deliver again
        records = self._read_committed(max_records)
        if not records and wait_s > 0:
            signal = self._stream_log.signal(self.shard)
            try:
                await asyncio.wait_for(signal.wait(), wait_s)
            except TimeoutError:
                return []
            if self._closed:
                raise NotFound("reader is closed")
            records = self._read_committed(max_records)
        if records and self._unacked_since is None:
            self._unacked_since = clock.monotonic()
        return records

    def _read_committed(self, max_records: int) -> list[Record]:
        if self._stream_log.deleted:
            raise NotFound(f"no stream {self.stream!r}")
        out: list[Record] = []
        chunk_size = min(_MAX_READ, max(_MIN_READ, max_records * _BYTES_PER_RECORD_GUESS))
        decode = self._stream_log.decode
        while len(out) < max_records:
            segment = self._segment
            if segment.deleted:  # trimmed by retention under us
                self._segment = segment = self._log.segments[0]
                self._offset = 0
            if self._offset >= segment.size:
                if segment is self._log.active:
                    break
                index = self._log.segments.index(segment)
                following = self._log.segments[index + 1]
                if segment.end_sequence < following.base:
                    break  # its last records are still being written
                self._segment = following
                self._offset = 0
                continue
            for frame, chunk, pos in segment.frames_from(self._offset, chunk_size=chunk_size):
                start, self._offset = self._offset, frame[0] + frame[1]
                if frame[2] < self._next:
                    continue
                try:
                    record = decode(self.shard, frame, chunk, pos)
                except BadRequest:
                    if out:  # hand out the good records first; the bad one raises next time
                        self._offset = start
                        return out
                    raise  # past it already: the caller decides (a dead letter, a log line)
                out.append(record)
                self._next = frame[2] + 1
                if len(out) >= max_records:
                    break
        return out

    async def _checkpoint(self, sequence: int) -> None:
        self._checkpoints.set(self.stream, self.group, self.shard, sequence)
        if self.last_read is not None and sequence >= self.last_read:
            self._unacked_since = None
        else:
            self._unacked_since = self.store.clock.monotonic()

    async def rewind(self) -> None:
        self._seek(self._resume_at())
        self._unacked_since = None

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close(self)
