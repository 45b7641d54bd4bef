"""One shard of one function: a reader, a dispatcher and up to `parallelization` lanes.

    reader -> dispatcher -> lane 0 -> executor -> handler
                         -> lane 1 -> ...
                            (a key always goes to the same lane)

The dispatcher reads batches (waiting up to `batch_window_s` to fill one), leaves out
records the type filter does not want, and hands the rest to the lane of their partition
key. Each lane invokes the handler with up to `batch_size` of its records at a time, in
order, so the records of a key are processed in order while different keys run side by
side (Lambda's ParallelizationFactor). The checkpoint moves to the lowest point below
which every dispatched record has finished (see `progress`), so a crash anywhere
re-delivers what was not finished: at least once.

At most `max_in_flight` records wait unfinished; past that the dispatcher stops reading,
so a lane that is stuck retrying holds back its shard (as a Kinesis shard is held by its
oldest record) but never makes memory grow.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from reelscale.core.errors import BadRequest
from reelscale.events.records import Record
from reelscale.events.store import EventStore, ShardReader
from reelscale.functions.deadletters import DeadLetterWriter, MalformedRecord
from reelscale.functions.executor import BatchExecutor
from reelscale.functions.progress import ShardProgress, lane_for
from reelscale.functions.spec import FunctionSpec
from reelscale.functions.stats import FunctionStats

IDLE_WAIT_S = 0.5  # how long one read waits for a record when the shard is idle
IN_FLIGHT_BATCHES = 2  # per lane: one running, one waiting
MAX_MALFORMED_IN_ROW = 10_000  # a reader that never gets past a bad record is a bug
log = logging.getLogger("reelscale.functions")


@dataclass
class FunctionParts:
    """What every shard of a function shares."""

    spec: FunctionSpec
    store: EventStore
    executor: BatchExecutor
    stats: FunctionStats
    dead_letters: DeadLetterWriter | None
    ack_wait_s: float


class Lane:
    def __init__(self, index: int, parts: FunctionParts, shard: ShardWorker) -> None:
        self.index = index
        self.parts = parts
        self.shard = shard
        self.queue: deque[Record] = deque()
        self._ready = asyncio.Event()
        self._closing = False

    def put(self, record: Record) -> None:
        self.queue.append(record)
        self._ready.set()

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closing = True
        self._ready.set()

    async def run(self) -> None:
        batch_size = self.parts.spec.batch_size
        while True:
            if not self.queue:
                if self._closing:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            batch = [self.queue.popleft() for _ in range(min(batch_size, len(self.queue)))]
            await self.parts.executor.run(batch)
            await self.shard.finished(batch)


class ShardWorker:
    def __init__(self, parts: FunctionParts, shard: int) -> None:
        self.parts = parts
        self.shard = shard
        spec = parts.spec
        self.lanes = [Lane(i, parts, self) for i in range(spec.parallelization)]
        self.max_in_flight = spec.batch_size * spec.parallelization * IN_FLIGHT_BATCHES
        self.progress = ShardProgress()
        self._reader: ShardReader | None = None
        self._room = asyncio.Event()
        self._checkpoint_lock = asyncio.Lock()
        self._careful = False  # reading one record at a time, to step over a malformed one
        self._last_seen: int | None = None
        self._malformed_in_row = 0
        self.healthy = False  # has read from its shard since it started

    async def run(self) -> None:
        """Process the shard until it is closed and drained (or forever if it is open)."""
        spec = self.parts.spec
        reader = await self.parts.store.open_reader(
            spec.stream,
            group=spec.consumer_group,
            shard=self.shard,
            start=spec.start,
            ack_wait_s=self.parts.ack_wait_s,
        )
        self._reader = reader
        try:
            async with asyncio.TaskGroup() as tasks:
                for lane in self.lanes:
                    tasks.create_task(lane.run(), name=f"fn.{spec.name}.{self.shard}.{lane.index}")
                tasks.create_task(self._dispatch(reader), name=f"fn.{spec.name}.{self.shard}")
        finally:
            self._reader = None
            await reader.close()

    # -- dispatching ----------------------------------------------------------------------

    async def _dispatch(self, reader: ShardReader) -> None:
        spec = self.parts.spec
        lanes = self.lanes
        while True:
            while self.progress.outstanding >= self.max_in_flight:
                self._room.clear()
                await self._room.wait()
            records = await self._gather(reader)
            self.healthy = True
            if not records:
                await self._checkpoint()  # the reader may have caught up with the lanes
                if self.progress.outstanding == 0 and await reader.finished():
                    for lane in lanes:
                        lane.close()
                    return
                continue
            skipped = 0
            for record in records:
                if self.progress.seen(record.sequence) or (
                    reader.checkpointed is not None and record.sequence <= reader.checkpointed
                ):
                    continue  # delivered again (a rewind, a redelivery): already in hand
                self.progress.dispatch(record.sequence)
                if spec.wants(record):
                    lanes[lane_for(record.partition_key, len(lanes))].put(record)
                else:
                    skipped += 1
                    self.progress.finish(record.sequence)
            if skipped:
                self.parts.stats.skipped(skipped)
            await self._checkpoint()

    async def _gather(self, reader: ShardReader) -> list[Record]:
        """One batch: what is there now, plus what arrives within the batching window."""
        spec = self.parts.spec
        records = await self._read(reader, spec.batch_size, IDLE_WAIT_S)
        if not records or spec.batch_window_s <= 0 or len(records) >= spec.batch_size:
            return records
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.batch_window_s
        while len(records) < spec.batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            records += await self._read(reader, spec.batch_size - len(records), remaining)
        return records

    async def _read(self, reader: ShardReader, max_records: int, wait_s: float) -> list[Record]:
        if self._careful:
            return await self._read_carefully(reader)
        try:
            return await reader.read(max_records=max_records, wait_s=wait_s)
        except BadRequest as exc:
            # A stored record could not be decoded. The records read before it in that
            # call went down with the exception, so go back to the checkpoint and read
            # one record at a time until the bad one comes up again.
            log.error(
                "a stored record could not be decoded; stepping over it",
                extra={"function": self.parts.spec.name, "shard": self.shard, "error": str(exc)},
            )
            self._careful = True
            await reader.rewind()
            self._last_seen = reader.checkpointed
            return []

    async def _read_carefully(self, reader: ShardReader) -> list[Record]:
        try:
            records = await reader.read(max_records=1, wait_s=0.0)
        except BadRequest as exc:
            self._malformed_in_row += 1
            if self._malformed_in_row > MAX_MALFORMED_IN_ROW:
                raise
            await self._malformed(exc)
            self._careful = False
            return []
        self._malformed_in_row = 0
        if records:
            self._last_seen = records[-1].sequence
        else:
            self._careful = False  # at the end without meeting it again
        return records

    async def _malformed(self, exc: BadRequest) -> None:
        parts = self.parts
        bad = MalformedRecord(parts.spec.stream, self.shard, self._last_seen, exc.detail)
        after = bad.after_sequence
        where = "at the start" if after is None else f"after sequence {after}"
        parts.stats.error(f"malformed record {where} on shard {self.shard}: {exc.detail}")
        if parts.dead_letters is not None:
            await parts.dead_letters.send_malformed(bad)
        parts.stats.dead("malformed_record")

    # -- finishing ------------------------------------------------------------------------

    async def finished(self, batch: list[Record]) -> None:
        """A lane is done with these records (processed or given up on)."""
        for record in batch:
            self.progress.finish(record.sequence)
        self._room.set()
        await self._checkpoint()

    async def _checkpoint(self) -> None:
        reader = self._reader
        if reader is None:
            return
        async with self._checkpoint_lock:
            target = self.progress.safe
            if target is None or reader.last_read is None:
                return
            # After a rewind the reader may not have re-read as far as the lanes got; it
            # refuses a checkpoint past what it has handed out, so wait for it to catch up.
            target = min(target, reader.last_read)
            if reader.checkpointed is not None and target <= reader.checkpointed:
                return
            await reader.checkpoint(target)
