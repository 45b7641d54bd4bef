"""The stream contract: what every event-store backend does, whatever it stores in.

    EventStore (a lifecycle Service)
      streams   create_stream (ensure), describe_stream, list_streams, delete_stream, reshard
      writes    put, put_batch          -> Record(s), acknowledged once durable
      reads     open_reader(group, shard, start) -> ShardReader
      metrics   lag(group)              -> ShardLag per shard

Delivery is at least once. A reader hands out a shard's records in order; the group's
checkpoint on the shard (cumulative, like a Kinesis checkpoint) moves only when the reader
says so. A new reader of the group resumes after the checkpoint, and records read but not
checkpointed within `ack_wait_s` are delivered again. Only one reader per (group, shard)
should run at a time: the caller (the functions runtime) assigns shards.

A reader of a shard created by resharding hands out nothing until the group has drained
every parent of that shard, so the records of a key stay in order across the change (see
`shardmap`). Errors are the platform's: NotFound for an unknown stream or shard,
PayloadTooLarge for an oversized event, BadRequest for anything malformed.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reelscale.core.clock import Clock, SystemClock
from reelscale.core.errors import BadRequest
from reelscale.core.events import CloudEvent
from reelscale.core.lifecycle import Service
from reelscale.events.records import (
    MAX_EVENT_BYTES,
    TRIM_HORIZON,
    PutEntry,
    Record,
    ShardLag,
    StartAt,
    StartPosition,
    StreamInfo,
    check_name,
)
from reelscale.events.shardmap import ShardMap

DEFAULT_ACK_WAIT_S = 30.0
DEFAULT_IDEMPOTENCY_WINDOW_S = 120.0  # JetStream's default duplicate window
_PARENT_POLL_S = 0.05


class EventStore(Service, ABC):
    name = "events"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        max_event_bytes: int = MAX_EVENT_BYTES,
        idempotency_window_s: float = DEFAULT_IDEMPOTENCY_WINDOW_S,
    ) -> None:
        super().__init__()
        self.clock: Clock = clock or SystemClock()
        self.max_event_bytes = max_event_bytes
        self.idempotency_window_s = idempotency_window_s

    # -- streams -------------------------------------------------------------------------

    @abstractmethod
    async def create_stream(
        self,
        name: str,
        *,
        shards: int = 1,
        max_age_s: float | None = None,
        max_bytes: int | None = None,
    ) -> StreamInfo:
        """Create a stream, or return the existing one with its retention updated.

        Asking for another shard count on an existing stream is a Conflict: use reshard.
        """

    @abstractmethod
    async def describe_stream(self, name: str) -> StreamInfo:
        """The stream's shards and retention; NotFound if there is no such stream."""

    @abstractmethod
    async def list_streams(self) -> list[str]:
        """Every stream's name, sorted."""

    @abstractmethod
    async def delete_stream(self, name: str) -> None:
        """Delete a stream, its records and its checkpoints."""

    @abstractmethod
    async def reshard(self, name: str, *, shards: int) -> StreamInfo:
        """Replace the open shards by `shards` new ones (see `shardmap`)."""

    @abstractmethod
    async def shard_map(self, name: str) -> ShardMap:
        """Every shard the stream has had, open and closed."""

    # -- writes --------------------------------------------------------------------------

    async def put(
        self,
        stream: str,
        event: CloudEvent | Mapping[str, Any],
        *,
        partition_key: str,
        idempotency_key: str | None = None,
    ) -> Record:
        """Append one event; returns once it is durable.

        A repeated idempotency key within the window returns the first record and stores
        nothing.
        """
        (record,) = await self.put_batch(stream, [PutEntry(event, partition_key, idempotency_key)])
        return record

    @abstractmethod
    async def put_batch(self, stream: str, entries: Sequence[PutEntry]) -> list[Record]:
        """Append events in order; returns their records once all are durable.

        Every entry is validated before any is stored: one bad entry fails the batch.
        """

    # -- reads ---------------------------------------------------------------------------

    async def open_reader(
        self,
        stream: str,
        *,
        group: str,
        shard: int,
        start: StartAt = TRIM_HORIZON,
        ack_wait_s: float = DEFAULT_ACK_WAIT_S,
    ) -> ShardReader:
        """A reader of one shard for a consumer group, resuming after its checkpoint."""
        check_name("group", group)
        if ack_wait_s <= 0:
            raise BadRequest("ack_wait_s must be positive")
        shards = await self.shard_map(stream)
        parents = shards.get(shard).parents
        return await self._open_reader(
            stream, group=group, shard=shard, start=start, ack_wait_s=ack_wait_s, parents=parents
        )

    @abstractmethod
    async def _open_reader(
        self,
        stream: str,
        *,
        group: str,
        shard: int,
        start: StartAt,
        ack_wait_s: float,
        parents: tuple[int, ...],
    ) -> ShardReader: ...

    @abstractmethod
    async def load_checkpoint(self, stream: str, *, group: str, shard: int) -> int | None:
        """The group's checkpoint on a shard: the last sequence it has processed."""

    @abstractmethod
    async def shard_tail(self, stream: str, shard: int) -> tuple[int, datetime] | None:
        """Sequence and timestamp of the newest record kept in a shard, or None if empty."""

    @abstractmethod
    async def lag(self, stream: str, *, group: str) -> list[ShardLag]:
        """How far the group is behind on every shard that still holds records for it."""

    async def enforce_retention(self) -> None:
        """Apply retention now. Backends whose server trims on its own do nothing."""

    async def shard_drained(self, stream: str, *, group: str, shard: int, start: StartAt) -> bool:
        """True when a closed shard holds nothing more for the group."""
        shards = await self.shard_map(stream)
        if shards.is_open(shard):
            return False
        tail = await self.shard_tail(stream, shard)
        if tail is None:
            return True
        checkpoint = await self.load_checkpoint(stream, group=group, shard=shard)
        if checkpoint is not None:
            return checkpoint >= tail[0]
        if start.position is StartPosition.LATEST:
            return True
        if start.position is StartPosition.AT_SEQUENCE:
            return (start.sequence or 0) > tail[0]
        if start.position is StartPosition.AT_TIMESTAMP:
            return start.timestamp is not None and start.timestamp > tail[1]
        return False


class ShardReader(ABC):
    """Reads one shard, in order, for one consumer group."""

    def __init__(
        self,
        store: EventStore,
        stream: str,
        *,
        group: str,
        shard: int,
        start: StartAt,
        ack_wait_s: float,
        parents: tuple[int, ...],
    ) -> None:
        self.store = store
        self.stream = stream
        self.group = group
        self.shard = shard
        self.start = start
        self.ack_wait_s = ack_wait_s
        self.parents = parents
        self._parents_drained = not parents
        self.checkpointed: int | None = None  # set by subclasses when they open
        self.last_read: int | None = None

    async def read(self, *, max_records: int = 500, wait_s: float = 0.0) -> list[Record]:
        """Up to `max_records` next records; waits up to `wait_s` for the first one."""
        if max_records < 1:
            raise BadRequest("max_records must be at least 1")
        if not self._parents_drained:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_s
            while not await self._check_parents():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                await asyncio.sleep(min(remaining, _PARENT_POLL_S))
            wait_s = max(0.0, deadline - loop.time())
        records = await self._read(max_records, wait_s)
        if records:
            self.last_read = records[-1].sequence
        return records

    async def _check_parents(self) -> bool:
        for parent in self.parents:
            drained = await self.store.shard_drained(
                self.stream, group=self.group, shard=parent, start=self.start
            )
            if not drained:
                return False
        self._parents_drained = True
        return True

    async def checkpoint(self, sequence: int) -> None:
        """Record that the group has processed everything up to `sequence` on this shard."""
        if self.last_read is None or sequence > self.last_read:
            raise BadRequest(f"cannot checkpoint {sequence}: it has not been read yet")
        if self.checkpointed is not None and sequence <= self.checkpointed:
            return  # checkpoints only move forward; a repeat is harmless
        await self._checkpoint(sequence)
        self.checkpointed = sequence

    def overdue(self, unacked_since: float | None, now: float) -> bool:
        """Whether records delivered at `unacked_since` and still unchecked are due again."""
        return unacked_since is not None and now - unacked_since >= self.ack_wait_s

    async def finished(self) -> bool:
        """True once the shard is closed and the group has checkpointed all of it."""
        return await self.store.shard_drained(
            self.stream, group=self.group, shard=self.shard, start=self.start
        )

    @abstractmethod
    async def _read(self, max_records: int, wait_s: float) -> list[Record]: ...

    @abstractmethod
    async def _checkpoint(self, sequence: int) -> None: ...

    @abstractmethod
    async def rewind(self) -> None:
        """Deliver again everything after the checkpoint (after a failed batch)."""

    @abstractmethod
    async def close(self) -> None: ...
