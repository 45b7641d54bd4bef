"""Group commit: puts queue up, one flusher writes them and fsyncs once per batch.

Each put waits on a future that resolves only after the fsync covering its records has
returned, so an acknowledged record survives a crash. The flusher is a two-stage
pipeline: while one batch is in write+fsync (in a worker thread, which frees the event
loop), the next batch is framed and checksummed. Under load batches grow by themselves
and the cost of an fsync is shared by all of their records.

Sequence numbers, timestamps and shards are assigned here, under the store's write lock,
so a reshard or a retention pass never interleaves with a half-built batch: whoever
takes the lock with `exclusive()` gets it once nothing is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from reelscale.core.clock import Clock
from reelscale.core.errors import NotFound, Overloaded, PlatformError
from reelscale.events.embedded.frames import frame_header
from reelscale.events.embedded.segments import Segment, ShardLog
from reelscale.events.embedded.streamlog import DedupEntry, StreamLog, from_us, to_us
from reelscale.events.records import EncodedEvent, Record

log = logging.getLogger("reelscale.events.embedded")

# (the checked event, frame body = key + idempotency key + event JSON, key length,
#  idempotency key length)
Prepared = tuple[EncodedEvent, bytes, int, int]
WRITER_THREADS = 8  # shard files written and fsynced at once
Outcome = tuple["asyncio.Future[list[Record]]", "list[Record] | PlatformError"]


@dataclass(slots=True)
class PendingPut:
    stream: StreamLog
    entries: list[Prepared]
    future: asyncio.Future[list[Record]]


@dataclass(slots=True)
class _ShardWrite:
    stream: StreamLog
    shard_log: ShardLog
    segment: Segment
    new_segment: bool
    count: int = 0
    last_ts_us: int = 0
    parts: list[bytes] = field(default_factory=list)
    data: bytes = b""


@dataclass(slots=True)
class _Batch:
    writes: list[_ShardWrite]
    outcomes: list[Outcome]
    new_keys: list[tuple[StreamLog, str, DedupEntry]]


class GroupCommitter:
    def __init__(
        self,
        *,
        clock: Clock,
        segment_bytes: int,
        dedup_window_s: float,
        max_queued: int,
    ) -> None:
        self.clock = clock
        self.segment_bytes = segment_bytes
        self.dedup_window_us = int(dedup_window_s * 1_000_000)
        self.max_queued = max_queued
        self.batches = 0  # fsynced batches, for tests and the benchmark
        self._lock = asyncio.Lock()
        self._exclusive_waiting = 0
        self._queue: list[PendingPut] = []
        self._queued = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    def start(self) -> None:
        self._closing = False
        self._executor = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="events-fsync")
        self._task = asyncio.create_task(self._run(), name="events.embedded.flusher")

    async def stop(self) -> None:
        """Commit everything already queued, then stop: a clean stop loses no put."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold off the flusher (with nothing in flight) to change files or shard maps."""
        self._exclusive_waiting += 1
        try:
            async with self._lock:
                yield
        finally:
            self._exclusive_waiting -= 1

    def submit(self, stream: StreamLog, entries: list[Prepared]) -> asyncio.Future[list[Record]]:
        if self._task is None or self._closing:
            raise Overloaded("the event store is not running", retry_after=1)
        if self._queued + len(entries) > self.max_queued:
            raise Overloaded("the event store's write queue is full", retry_after=1)
        future: asyncio.Future[list[Record]] = asyncio.get_running_loop().create_future()
        self._queue.append(PendingPut(stream, entries, future))
        self._queued += len(entries)
        self._wake.set()
        return future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            async with self._lock:
                # Shielded: if this task is cancelled, the batches in hand still finish and
                # their puts still get an answer; an fsync thread cannot be stopped anyway.
                await asyncio.shield(self._pump())

    async def _pump(self) -> None:
        """Commit queued batches back to back; return with nothing in flight."""
        in_flight: asyncio.Task[bool] | None = None
        while True:
            batch = self._prepare(self._take()) if self._queue else None
            if in_flight is not None:
                written = await in_flight
                in_flight = None
                if not written and batch is not None:
                    # Its sequences followed the failed batch's, which were taken back.
                    self._fail(batch, PlatformError("event log write failed"))
                    batch = None
            if batch is None:
                return
            in_flight = asyncio.ensure_future(self._write(batch))
            if self._exclusive_waiting:
                await in_flight
                return

    def _take(self) -> list[PendingPut]:
        batch, self._queue, self._queued = self._queue, [], 0
        return batch

    def _prepare(self, batch: list[PendingPut]) -> _Batch:
        """Assign shards, sequences and timestamps, and frame every record."""
        outcomes: list[Outcome] = []
        writes: dict[int, _ShardWrite] = {}
        new_keys: list[tuple[StreamLog, str, DedupEntry]] = []
        now_us = to_us(self.clock.now())
        for put in batch:
            stream = put.stream
            if stream.deleted:
                outcomes.append((put.future, NotFound(f"no stream {stream.name!r}")))
                continue
            ts = stream.last_ts_us = max(now_us, stream.last_ts_us)
            when = from_us(ts)
            stream.prune_dedup(ts - self.dedup_window_us)
            shard_for = stream.router.shard_for
            logs = stream.logs
            name = stream.name
            records: list[Record] = []
            for encoded, body, key_len, idem_len in put.entries:
                idem = encoded.idempotency_key
                if idem is not None:
                    original = _original(stream, idem)
                    if original is not None:
                        records.append(original)
                        continue
                shard = shard_for(encoded.partition_key)
                shard_log = logs[shard]
                write = writes.get(id(shard_log))
                if write is None:
                    write = writes[id(shard_log)] = self._begin(stream, shard_log)
                sequence = shard_log.next_sequence
                shard_log.next_sequence = sequence + 1
                write.parts.append(frame_header(sequence, ts, key_len, idem_len, body))
                write.parts.append(body)
                write.count += 1
                write.last_ts_us = ts
                record = Record(name, shard, sequence, encoded.partition_key, when, encoded.event)
                records.append(record)
                if idem is not None:
                    # In the window at once, so a repeat in this batch or the next one (which
                    # is prepared while this one is written) finds it.
                    entry = stream.dedup[idem] = DedupEntry(shard, sequence, ts, record)
                    new_keys.append((stream, idem, entry))
            outcomes.append((put.future, records))
        for write in writes.values():
            write.data = b"".join(write.parts)
            write.parts = []
            write.shard_log.in_flight += write.count
        return _Batch(list(writes.values()), outcomes, new_keys)

    def _begin(self, stream: StreamLog, shard_log: ShardLog) -> _ShardWrite:
        # Roll only when nothing is in flight on the shard, so a segment never gains
        # records after its successor exists.
        new_segment = False
        if shard_log.active.size >= self.segment_bytes and not shard_log.in_flight:
            shard_log.roll()
            new_segment = True
        return _ShardWrite(stream, shard_log, shard_log.active, new_segment)

    async def _write(self, batch: _Batch) -> bool:
        """Write and fsync the batch, then acknowledge its puts; False if it failed."""
        if batch.writes:
            # One thread per shard file: concurrent fsyncs share the filesystem's journal
            # commit, where one after another would each wait for their own.
            loop = asyncio.get_running_loop()
            writing = [
                loop.run_in_executor(self._executor, _write_one, write) for write in batch.writes
            ]
            results = await asyncio.gather(*writing, return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                log.error("event log write failed; the batch is refused", exc_info=errors[0])
                for write in batch.writes:
                    write.shard_log.abandon()
                self._fail(batch, PlatformError(f"event log write failed: {errors[0]}"))
                return False
        now_us = 0
        for write in batch.writes:
            write.shard_log.publish(write.segment, write.data, write.count, write.last_ts_us)
            write.stream.notify(write.shard_log.shard)
            now_us = max(now_us, write.last_ts_us)
        for _, _, entry in batch.new_keys:
            entry.record = None  # readable from the log from now on
        for stream in {id(w.stream): w.stream for w in batch.writes}.values():
            if stream.max_bytes is not None and not any(s.in_flight for s in stream.logs.values()):
                stream.enforce_retention(now_us)
        self.batches += 1
        for future, outcome in batch.outcomes:
            if future.done():
                continue  # its caller gave up waiting; the records are stored all the same
            if isinstance(outcome, PlatformError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        return True

    @staticmethod
    def _fail(batch: _Batch, error: PlatformError) -> None:
        for future, _ in batch.outcomes:
            if not future.done():
                future.set_exception(error)
        for write in batch.writes:
            write.shard_log.next_sequence = write.shard_log.committed_end
            write.shard_log.in_flight = 0
        for stream, key, entry in batch.new_keys:
            if stream.dedup.get(key) is entry:
                del stream.dedup[key]


def _original(stream: StreamLog, key: str) -> Record | None:
    entry = stream.dedup.get(key)
    if entry is None:
        return None
    if entry.record is not None:
        return entry.record
    try:
        return stream.record_at(entry.shard, entry.sequence)
    except PlatformError:
        # Unreadable (damaged) original: store the repeat rather than fail the batch.
        log.exception("could not read an idempotent original", extra={"key": key})
        return None


def _write_one(write: _ShardWrite) -> None:
    write.shard_log.write(write.segment, write.data, new_segment=write.new_segment)
