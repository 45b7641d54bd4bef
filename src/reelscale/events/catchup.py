"""Read what a stream holds since a time, once, without keeping a checkpoint.

Some state is rebuilt from recent events every time a process starts, rather than resumed:
the sessions revoked within the last token lifetime are the example. A consumer group
resumes after its checkpoint, so a restarted process would never see again the revocations
it had applied before the restart, and would accept those tokens until they expire. A
catch-up reads every shard from `since` up to its tail as it was when the catch-up began,
through a group of its own that never checkpoints, so the next start reads the same window
again. (On NATS that group's consumers are recreated at `since` on every start: one per
shard, not one per start.)

Order across shards is not kept and each shard is read on its own, so this is for state
that does not depend on order between keys (a set of revoked sessions). A shard whose
parents (after a reshard) are not drained for the group waits for them, which a group that
never checkpoints never sees: such a shard is read until the deadline and then left, with
a warning.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from reelscale.events.consumer import BatchHandler
from reelscale.events.records import Record, StartAt
from reelscale.events.store import EventStore, ShardReader

log = logging.getLogger("reelscale.events")

_READ_WAIT_S = 0.2


async def catch_up(
    store: EventStore,
    stream: str,
    *,
    group: str,
    since: datetime,
    handle: BatchHandler,
    timeout_s: float = 10.0,
    batch_size: int = 500,
) -> int:
    """Hand every record stored in `stream` since `since` to `handle`; how many were read.

    Stops at each shard's tail as it was at the start (records put meanwhile are for the
    caller's ongoing consumer). Raises TimeoutError if the window could not be read within
    `timeout_s`, after handing over what was read.
    """
    async with asyncio.timeout(timeout_s):
        shard_map = await store.shard_map(stream)
        total = 0
        for shard in shard_map.shards:
            tail = await store.shard_tail(stream, shard.id)
            if tail is None or tail[1] < since:
                continue  # empty, or nothing in it is recent enough
            reader = await store.open_reader(
                stream, group=group, shard=shard.id, start=StartAt.at_timestamp(since)
            )
            try:
                total += await _read_to(reader, tail[0], handle, batch_size)
            finally:
                await reader.close()
        return total


async def _read_to(reader: ShardReader, last: int, handle: BatchHandler, batch_size: int) -> int:
    read = 0
    while reader.last_read is None or reader.last_read < last:
        records: list[Record] = await reader.read(max_records=batch_size, wait_s=_READ_WAIT_S)
        batch = [record for record in records if record.sequence <= last]
        if batch:
            read += len(batch)
            await handle(batch)
    return read
