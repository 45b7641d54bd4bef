"""One function's loop: its streams, and a `ShardWorker` per shard, each on its own.

The loop makes sure the source stream (if `create_stream`) and the dead-letter stream
exist, then keeps one shard worker running per shard that is not finished, looking for
shards added by resharding every `refresh_s`. A shard worker that fails (its reader, the
store, the dead-letter stream) is restarted after a backoff and resumes at its
checkpoint; the other shards carry on meanwhile.

Streams are created only when missing (never "ensured" with create_stream, which would
reset the retention of an existing stream), so functions may start before whatever
writes to their stream, and in any order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from reelscale.core.errors import NotFound
from reelscale.functions.executor import backoff_delay, describe
from reelscale.functions.shard import FunctionParts, ShardWorker
from reelscale.functions.streams import DEAD_LETTER_MAX_AGE_S, ensure_stream

SHARD_RESTART_BASE_S = 0.5
SHARD_RESTART_MAX_S = 30.0
log = logging.getLogger("reelscale.functions")


class FunctionWorker:
    def __init__(self, parts: FunctionParts, *, refresh_s: float = 1.0) -> None:
        self.parts = parts
        self.refresh_s = refresh_s
        self.shards: dict[int, ShardWorker] = {}
        self.started = False  # the streams are in place and shards are being read
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._finished: set[int] = set()
        self._failures: dict[int, int] = {}  # shard -> failures in a row
        self._not_before: dict[int, float] = {}  # shard -> when it may restart

    async def run(self) -> None:
        """Runs until cancelled; raises (to its supervisor) only if it cannot set up."""
        stats = self.parts.stats
        try:
            await self._prepare()
        except Exception as exc:
            stats.failing = True
            stats.error(f"cannot start: {describe(exc)}")
            raise
        self.started = True
        self._tasks.clear()
        self._finished.clear()
        try:
            while True:
                shard_ids = await self._shard_ids()
                if shard_ids is not None:
                    self._start_shards(shard_ids)
                self._reap_shards()
                stats.failing = shard_ids is None or bool(self._failures)
                running = list(self._tasks.values())
                if running:
                    await asyncio.wait(running, timeout=self.refresh_s)
                else:
                    await asyncio.sleep(self.refresh_s)
        finally:
            for task in self._tasks.values():
                task.cancel()
            for task in self._tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._tasks.clear()
            self.shards.clear()
            self.started = False

    async def _shard_ids(self) -> list[int] | None:
        spec = self.parts.spec
        try:
            return [shard.id for shard in (await self.parts.store.shard_map(spec.stream)).shards]
        except Exception as exc:  # the stream was deleted, the store is down: try again
            self.parts.stats.error(f"cannot read stream {spec.stream!r}: {describe(exc)}")
            if isinstance(exc, NotFound):
                with contextlib.suppress(Exception):
                    await self._prepare()  # recreates it, if the function may
            return None

    def _start_shards(self, shard_ids: list[int]) -> None:
        now = asyncio.get_running_loop().time()
        for shard in shard_ids:
            if shard in self._tasks or shard in self._finished:
                continue
            if self._not_before.get(shard, 0.0) > now:
                continue
            worker = self.shards[shard] = ShardWorker(self.parts, shard)
            self._tasks[shard] = asyncio.create_task(
                worker.run(), name=f"fn.{self.parts.spec.name}.shard.{shard}"
            )

    def _reap_shards(self) -> None:
        spec = self.parts.spec
        now = asyncio.get_running_loop().time()
        for shard, task in list(self._tasks.items()):
            if not task.done():
                if self._failures.get(shard) and self.shards[shard].healthy:
                    del self._failures[shard]  # it reads again: forget its past failures
                continue
            del self._tasks[shard]
            self.shards.pop(shard, None)
            error: BaseException | None = (
                asyncio.CancelledError("the shard's task was cancelled")
                if task.cancelled()
                else task.exception()
            )
            if error is None:
                self._finished.add(shard)  # closed by resharding and fully processed
                continue
            failures = self._failures[shard] = self._failures.get(shard, 0) + 1
            delay = backoff_delay(failures, SHARD_RESTART_BASE_S, SHARD_RESTART_MAX_S)
            self._not_before[shard] = now + delay
            cause = _first(error)
            self.parts.stats.error(f"shard {shard}: {describe(cause)}")
            log.error(
                "function shard failed; restarting it",
                exc_info=cause,
                extra={"function": spec.name, "shard": shard, "retry_in_s": delay},
            )

    async def _prepare(self) -> None:
        parts = self.parts
        spec = parts.spec
        if spec.create_stream:
            await ensure_stream(parts.store, spec.stream, shards=spec.shards)
        else:
            await parts.store.describe_stream(spec.stream)  # NotFound names the stream
        if parts.dead_letters is not None:
            await ensure_stream(
                parts.store, spec.dead_letter_stream, max_age_s=DEAD_LETTER_MAX_AGE_S
            )


def _first(error: BaseException) -> BaseException:
    """The first real error inside a task group's ExceptionGroup."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error
