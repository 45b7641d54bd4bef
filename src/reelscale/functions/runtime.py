"""`FunctionsRuntime`: runs every registered function over the event stream.

A lifecycle `Service` that must start after the event store. Each function runs in its
own supervised task (a crash is logged, counted and restarted with backoff, and never
touches another function or the process); inside it each shard runs on its own too (see
`worker`). Stopping cancels everything at once: whatever was not checkpointed is
delivered again on the next start (at least once), and checkpoints only ever cover
records that were processed or dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from reelscale.core.clock import Clock, SystemClock
from reelscale.core.errors import BadRequest, NotFound
from reelscale.core.lifecycle import Service
from reelscale.events.store import DEFAULT_ACK_WAIT_S, EventStore
from reelscale.functions.concurrency import ConcurrencyLimit
from reelscale.functions.deadletters import DeadLetterWriter
from reelscale.functions.executor import BatchExecutor
from reelscale.functions.metrics import FunctionMetrics
from reelscale.functions.pool import DEFAULT_IDLE_S, InstancePool
from reelscale.functions.registry import FunctionRegistry
from reelscale.functions.replay import read_letters, replay_letters
from reelscale.functions.schemas import DeadLetter, FunctionState, FunctionStatus, ReplayResult
from reelscale.functions.shard import FunctionParts
from reelscale.functions.spec import FunctionSpec
from reelscale.functions.stats import FunctionStats
from reelscale.functions.worker import FunctionWorker

Sleep = Callable[[float], Awaitable[None]]
COUNT_GROUP = "functions-count"  # never checkpoints, so its lag is everything kept
MAX_LETTERS_PER_READ = 10_000
log = logging.getLogger("reelscale.functions")


@dataclass
class _Function:
    spec: FunctionSpec
    stats: FunctionStats
    limit: ConcurrencyLimit
    worker: FunctionWorker
    letters_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    replay_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FunctionsRuntime(Service):
    name = "functions"

    def __init__(
        self,
        store: EventStore,
        registry: FunctionRegistry,
        *,
        clock: Clock | None = None,
        registry_metrics: CollectorRegistry | None = None,
        sleep: Sleep | None = None,
        refresh_s: float = 1.0,
        instance_idle_s: float = DEFAULT_IDLE_S,
        lag_interval_s: float = 15.0,
    ) -> None:
        super().__init__()
        self.store = store
        self.registry = registry
        self.clock: Clock = clock or SystemClock()
        self.metrics = FunctionMetrics(registry_metrics or CollectorRegistry())
        self.sleep: Sleep = sleep or asyncio.sleep
        self.refresh_s = refresh_s
        self.instance_idle_s = instance_idle_s
        self._functions: dict[str, _Function] = {}
        self._add_registered()
        self.every("lag", lag_interval_s, self._publish_lag)

    # -- lifecycle ------------------------------------------------------------------------

    async def on_start(self) -> None:
        self._add_registered()  # functions registered after the runtime was built

    def _add_registered(self) -> None:
        for spec in self.registry:
            if spec.name not in self._functions:
                function = self._build(spec)
                self._functions[spec.name] = function
                self.supervise(f"fn.{spec.name}", function.worker.run)

    def _build(self, spec: FunctionSpec) -> _Function:
        stats = FunctionStats(spec.name, self.metrics, self.clock)
        limit = ConcurrencyLimit(spec.concurrency, on_throttle=stats.throttled)
        dead_letters = (
            DeadLetterWriter(self.store, spec.name, spec.dead_letter_stream, self.clock)
            if spec.dead_letter
            else None
        )
        executor = BatchExecutor(
            spec,
            stats=stats,
            metrics=self.metrics,
            limit=limit,
            pool=InstancePool(self.clock, idle_s=self.instance_idle_s),
            dead_letters=dead_letters,
            clock=self.clock,
            sleep=self.sleep,
        )
        parts = FunctionParts(
            spec=spec,
            store=self.store,
            executor=executor,
            stats=stats,
            dead_letters=dead_letters,
            # Past this a record read but not checkpointed is delivered again; the shard
            # worker drops such repeats, so this only needs to outlast most invocations.
            ack_wait_s=max(DEFAULT_ACK_WAIT_S, 2 * spec.timeout_s),
        )
        return _Function(spec, stats, limit, FunctionWorker(parts, refresh_s=self.refresh_s))

    def _function(self, name: str) -> _Function:
        function = self._functions.get(name)
        if function is None:
            raise NotFound(f"no function named {name!r}")
        return function

    # -- status ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._functions)

    async def status(self) -> list[FunctionStatus]:
        return [await self._status(self._functions[name]) for name in self.names()]

    async def function_status(self, name: str) -> FunctionStatus:
        return await self._status(self._function(name))

    async def _status(self, function: _Function) -> FunctionStatus:
        spec, stats = function.spec, function.stats
        lag_records: int | None = None
        iterator_age_s: float | None = None
        try:
            lags = await self.store.lag(spec.stream, group=spec.consumer_group)
            lag_records = sum(lag.records for lag in lags)
            iterator_age_s = max((lag.iterator_age_s for lag in lags), default=0.0)
        except Exception as exc:  # no stream yet, store down: unknown, not an error here
            log.debug("no lag for function", extra={"function": spec.name, "error": str(exc)})
        dead_letters: int | None = None
        unreplayed: int | None = None
        if spec.dead_letter:
            dead_letters = await self._count(spec.dead_letter_stream, COUNT_GROUP)
            unreplayed = await self._count(spec.dead_letter_stream, spec.replay_group)
        return FunctionStatus(
            name=spec.name,
            stream=spec.stream,
            group=spec.consumer_group,
            state=self._state(function),
            shards=len(function.worker.shards),
            lag_records=lag_records,
            iterator_age_s=iterator_age_s,
            invocations=stats.invocations,
            errors=stats.errors,
            throttles=stats.throttles,
            retries=stats.retries,
            records_processed=stats.records_processed,
            records_skipped=stats.records_skipped,
            dead_lettered=stats.dead_lettered,
            dead_letters=dead_letters,
            dead_letters_unreplayed=unreplayed,
            cold_starts=stats.cold_starts,
            warm_starts=stats.warm_starts,
            concurrent_executions=function.limit.running,
            concurrency=spec.concurrency,
            parallelization=spec.parallelization,
            dead_letter_stream=spec.dead_letter_stream if spec.dead_letter else None,
            last_error=stats.last_error,
            last_error_at=stats.last_error_at,
        )

    def _state(self, function: _Function) -> FunctionState:
        if not self.started:
            return "stopped"
        if function.stats.failing:
            return "failing"
        return "running" if function.worker.started else "starting"

    async def _count(self, stream: str, group: str) -> int | None:
        """Records a group has not checkpointed; 0 for a stream not created yet."""
        try:
            return sum(lag.records for lag in await self.store.lag(stream, group=group))
        except NotFound:
            return 0
        except Exception as exc:
            log.debug("cannot count", extra={"stream": stream, "error": str(exc)})
            return None

    async def _publish_lag(self) -> None:
        for function in list(self._functions.values()):
            spec = function.spec
            try:
                lags = await self.store.lag(spec.stream, group=spec.consumer_group)
            except Exception as exc:  # status() reports it; the gauges keep their last value
                log.debug("no lag for function", extra={"function": spec.name, "error": str(exc)})
                continue
            self.metrics.lag_records.labels(spec.name).set(sum(lag.records for lag in lags))
            self.metrics.iterator_age.labels(spec.name).set(
                max((lag.iterator_age_s for lag in lags), default=0.0)
            )

    # -- dead letters ---------------------------------------------------------------------

    async def dead_letters(
        self, name: str, limit: int = 100, *, after: int | None = None
    ) -> list[DeadLetter]:
        """The letters kept for a function, oldest first (after letter sequence `after`)."""
        function = self._function(name)
        if isinstance(limit, bool) or not 1 <= limit <= MAX_LETTERS_PER_READ:
            raise BadRequest(f"limit must be 1 to {MAX_LETTERS_PER_READ}")
        if after is not None and after < 0:
            raise BadRequest("after must be a letter sequence (0 or more)")
        if not function.spec.dead_letter:
            return []
        async with function.letters_lock:  # one reader per group and shard at a time
            return await read_letters(self.store, function.spec, limit=limit, after=after)

    async def replay(self, name: str, limit: int | None = None) -> ReplayResult:
        """Put letters not replayed yet back onto their source stream (same key, in order)."""
        function = self._function(name)
        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise BadRequest("limit must be at least 1")
        if not function.spec.dead_letter:
            return ReplayResult(function=name, replayed=0, skipped=0)
        async with function.replay_lock:
            result = await replay_letters(self.store, function.spec, limit=limit)
        log.info(
            "dead letters replayed",
            extra={"function": name, "replayed": result.replayed, "skipped": result.skipped},
        )
        return result

    async def replay_dead_letters(self, name: str, limit: int | None = None) -> int:
        """`replay`, returning how many letters were put back."""
        return (await self.replay(name, limit)).replayed
