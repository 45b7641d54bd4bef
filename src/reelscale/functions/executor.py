"""Running one lane's batch to the end: invoke, then retry, bisect or give up.

The rules, per batch (Lambda's, for stream event sources):

- An invocation fails when the handler raises, runs past `timeout_s`, returns something
  other than None or a `BatchFailure`, or returns a `BatchFailure`. With a `BatchFailure`
  the records before the lowest failed one are done; that one and every later one fail.
- A failed part is re-invoked after a backoff: `retry_backoff_s * 2**(n-1)`, at most
  `max_backoff_s`, where n counts the lane's failures in a row (a success resets it).
- With `bisect_on_error`, a failed part of more than one record is split in two halves,
  run one after the other (so per-key order holds), instead of being retried whole;
  a single record is retried up to `max_retries` times. Without it, the failed part is
  retried whole up to `max_retries` times. Either way a poison record ends somewhere.
- Before every invocation, records older than `max_record_age_s` are taken out unprocessed.
- What is given up on goes to the dead-letter stream with the last error and the number
  of failed invocations it was part of (or is dropped, logged, with `dead_letter=False`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from reelscale.core.clock import Clock
from reelscale.events.records import Record
from reelscale.functions.concurrency import ConcurrencyLimit
from reelscale.functions.deadletters import DeadLetterWriter, Failure
from reelscale.functions.metrics import FunctionMetrics
from reelscale.functions.pool import InstancePool
from reelscale.functions.spec import BatchFailure, FunctionSpec
from reelscale.functions.stats import FunctionStats

Sleep = Callable[[float], Awaitable[None]]
MAX_ERROR_CHARS = 4000
log = logging.getLogger("reelscale.functions")


def backoff_delay(failures_in_row: int, base_s: float, cap_s: float) -> float:
    """How long to wait before re-invoking after `failures_in_row` failures (1-based)."""
    if failures_in_row < 1 or base_s <= 0:
        return 0.0
    return float(min(cap_s, base_s * 2 ** min(failures_in_row - 1, 60)))


def describe(exc: BaseException) -> str:
    """An error as an operator wants to read it: type, message and where it was raised."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name})"
    return text[:MAX_ERROR_CHARS]


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    failed_from: int = 0  # index of the first record that is not done
    error: str = ""
    label: str = "ok"  # ok | error | partial | timeout


@dataclass
class _Run:
    """What one batch's processing carries across retries and bisected halves."""

    attempts: dict[int, int] = field(default_factory=dict)  # sequence -> failed invocations
    failures_in_row: int = 0


class BatchExecutor:
    def __init__(
        self,
        spec: FunctionSpec,
        *,
        stats: FunctionStats,
        metrics: FunctionMetrics,
        limit: ConcurrencyLimit,
        pool: InstancePool,
        dead_letters: DeadLetterWriter | None,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        self.spec = spec
        self.stats = stats
        self.metrics = metrics
        self.limit = limit
        self.pool = pool
        self.dead_letters = dead_letters
        self.clock = clock
        self.sleep = sleep

    async def run(self, records: list[Record]) -> None:
        """Returns once every record is processed or given up on; raises only if the
        dead-letter stream cannot be written (then nothing past them may be checkpointed)."""
        await self._run(records, _Run())

    async def _run(self, batch: list[Record], run: _Run) -> None:
        spec = self.spec
        retries = 0
        pending = batch
        while pending:
            if run.failures_in_row:
                self.stats.retried()
                await self.sleep(
                    backoff_delay(run.failures_in_row, spec.retry_backoff_s, spec.max_backoff_s)
                )
            pending = await self._take_out_expired(pending, run)
            if not pending:
                return
            outcome = await self._invoke(pending)
            if outcome.ok:
                self.stats.processed(len(pending))
                run.failures_in_row = 0
                return
            if outcome.failed_from:
                self.stats.processed(outcome.failed_from)
            pending = pending[outcome.failed_from :]
            for record in pending:
                run.attempts[record.sequence] = run.attempts.get(record.sequence, 0) + 1
            run.failures_in_row += 1
            if spec.bisect_on_error and len(pending) > 1:
                half = len(pending) // 2
                await self._run(pending[:half], run)
                await self._run(pending[half:], run)
                return
            if retries >= spec.max_retries:
                await self._give_up(
                    [
                        Failure(r, "retries_exhausted", outcome.error, run.attempts[r.sequence])
                        for r in pending
                    ]
                )
                run.failures_in_row = 0  # what follows is other records: no reason to wait
                return
            retries += 1

    async def _take_out_expired(self, pending: list[Record], run: _Run) -> list[Record]:
        max_age = self.spec.max_record_age_s
        if max_age is None:
            return pending
        now = self.clock.now()
        keep: list[Record] = []
        expired: list[Failure] = []
        for record in pending:
            age = (now - record.timestamp).total_seconds()
            if age > max_age:
                error = f"record is {age:.3f} s old, past max_record_age_s={max_age}"
                expired.append(
                    Failure(record, "record_expired", error, run.attempts.get(record.sequence, 0))
                )
            else:
                keep.append(record)
        if expired:
            await self._give_up(expired)
        return keep

    async def _invoke(self, pending: list[Record]) -> Outcome:
        spec = self.spec
        gauge = self.metrics.concurrent.labels(spec.name)
        async with self.limit.slot():
            instance, cold = self.pool.acquire()
            gauge.inc()
            started = time.perf_counter()
            deadline = asyncio.timeout(spec.timeout_s)
            try:
                async with deadline:
                    result = await spec.handler(list(pending))
            except TimeoutError as exc:
                if deadline.expired():
                    self.pool.discard(instance)
                    outcome = Outcome(False, 0, f"timed out after {spec.timeout_s} s", "timeout")
                else:
                    self.pool.release(instance)
                    outcome = Outcome(False, 0, describe(exc), "error")
            except asyncio.CancelledError as exc:
                current = asyncio.current_task()
                if current is None or current.cancelling():
                    raise  # the runtime is stopping
                # raised by the handler itself, not a cancellation of ours: just a failure
                self.pool.release(instance)
                outcome = Outcome(False, 0, describe(exc), "error")
            except (Exception, SystemExit) as exc:  # a handler must never end the process
                self.pool.release(instance)
                outcome = Outcome(False, 0, describe(exc), "error")
            else:
                self.pool.release(instance)
                outcome = _judge(result, pending)
            finally:
                gauge.dec()
            self.stats.invoked(outcome.label, time.perf_counter() - started, cold=cold)
        if not outcome.ok:
            self.stats.error(outcome.error)
            log.warning(
                "function invocation failed",
                extra={
                    "function": spec.name,
                    "error": outcome.error,
                    "records": len(pending),
                    "first_sequence": pending[0].sequence,
                },
            )
        return outcome

    async def _give_up(self, failures: list[Failure]) -> None:
        if not failures:
            return
        if self.dead_letters is not None:
            await self.dead_letters.send(failures)
        else:
            log.error(
                "dropping records the function gave up on (it has no dead-letter stream)",
                extra={
                    "function": self.spec.name,
                    "sequences": [f.record.sequence for f in failures][:100],
                    "error": failures[-1].error,
                },
            )
        for failure in failures:
            self.stats.dead(failure.reason)


def _judge(result: object, pending: list[Record]) -> Outcome:
    if result is None:
        return Outcome(True)
    if not isinstance(result, BatchFailure):
        return Outcome(
            False,
            0,
            f"handler returned {type(result).__name__}; expected None or BatchFailure",
            "error",
        )
    try:
        failed = set(result.failed)
    except TypeError:
        error = "handler returned a BatchFailure whose `failed` is not a list of sequences"
        return Outcome(False, 0, error, "error")
    if not failed:
        return Outcome(True)
    in_batch = {record.sequence for record in pending}
    unknown = [s for s in failed if s not in in_batch]
    if unknown:
        shown = ", ".join(repr(s) for s in unknown[:10])
        return Outcome(
            False,
            0,
            f"handler reported failed sequences that are not in the batch: {shown}",
            "error",
        )
    first = next(i for i, record in enumerate(pending) if record.sequence in failed)
    return Outcome(
        False, first, f"handler reported {len(failed)} failed record(s) in the batch", "partial"
    )
