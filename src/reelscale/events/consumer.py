"""A consumer group reading a whole stream: one reader per shard, parents before children.

This is the small loop the functions runtime builds on: each shard gets its own task, so
a slow or stuck shard never holds up another, and order holds within every shard. After
the handler returns, the batch is checkpointed; if it raises, the task stops with the
batch unacknowledged, so the records come again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from reelscale.events.records import TRIM_HORIZON, Record, StartAt
from reelscale.events.store import DEFAULT_ACK_WAIT_S, EventStore, ShardReader

BatchHandler = Callable[[list[Record]], Awaitable[None]]
_REFRESH_S = 1.0  # how often to look for shards added by resharding


class GroupConsumer:
    def __init__(
        self,
        store: EventStore,
        stream: str,
        *,
        group: str,
        start: StartAt = TRIM_HORIZON,
        ack_wait_s: float = DEFAULT_ACK_WAIT_S,
    ) -> None:
        self.store = store
        self.stream = stream
        self.group = group
        self.start = start
        self.ack_wait_s = ack_wait_s
        self.readers: dict[int, ShardReader] = {}
        self._done: set[int] = set()

    async def refresh(self) -> None:
        """Open a reader for every shard that has none and is not finished."""
        shard_map = await self.store.shard_map(self.stream)
        for shard in shard_map.shards:
            if shard.id in self.readers or shard.id in self._done:
                continue
            self.readers[shard.id] = await self.store.open_reader(
                self.stream,
                group=self.group,
                shard=shard.id,
                start=self.start,
                ack_wait_s=self.ack_wait_s,
            )

    async def poll(self, *, max_records: int = 500) -> list[Record]:
        """One pass over every shard without waiting; checkpoints what it returns.

        For tests and tools; a long-running consumer uses `run`.
        """
        await self.refresh()
        out: list[Record] = []
        for shard, reader in list(self.readers.items()):
            records = await reader.read(max_records=max_records)
            if records:
                await reader.checkpoint(records[-1].sequence)
                out.extend(records)
            elif await reader.finished():
                await self._retire(shard)
        return out

    async def run(
        self,
        handler: BatchHandler,
        *,
        stop: asyncio.Event,
        max_records: int = 500,
        wait_s: float = 0.5,
    ) -> None:
        """Feed every shard's batches to `handler` until `stop` is set."""
        tasks: dict[int, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                await self.refresh()
                for shard, reader in self.readers.items():
                    if shard not in tasks:
                        tasks[shard] = asyncio.create_task(
                            self._pump(reader, handler, stop, max_records, wait_s),
                            name=f"consumer.{self.stream}.{shard}",
                        )
                for shard, task in list(tasks.items()):
                    if task.done():
                        del tasks[shard]
                        task.result()  # a handler's error surfaces here
                        await self._retire(shard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _REFRESH_S)
        finally:
            for task in tasks.values():
                task.cancel()
            for task in tasks.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _pump(
        self,
        reader: ShardReader,
        handler: BatchHandler,
        stop: asyncio.Event,
        max_records: int,
        wait_s: float,
    ) -> None:
        while not stop.is_set():
            records = await reader.read(max_records=max_records, wait_s=wait_s)
            if records:
                await handler(records)
                await reader.checkpoint(records[-1].sequence)
            elif await reader.finished():
                return

    async def _retire(self, shard: int) -> None:
        reader = self.readers.pop(shard, None)
        if reader is not None:
            await reader.close()
        self._done.add(shard)

    async def close(self) -> None:
        for reader in self.readers.values():
            await reader.close()
        self.readers.clear()
