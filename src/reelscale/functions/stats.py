"""One function's counters: kept in process for `status()` and mirrored to Prometheus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reelscale.core.clock import Clock
from reelscale.functions.metrics import FunctionMetrics
from reelscale.functions.schemas import DeadLetterReason

MAX_ERROR_TEXT = 1000


@dataclass
class FunctionStats:
    name: str
    metrics: FunctionMetrics
    clock: Clock
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    retries: int = 0
    records_processed: int = 0
    records_skipped: int = 0
    dead_lettered: int = 0
    cold_starts: int = 0
    warm_starts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    failing: bool = False  # the function's loop or a shard's is failing right now

    def invoked(self, outcome: str, duration_s: float, *, cold: bool) -> None:
        self.invocations += 1
        self.metrics.invocations.labels(self.name, outcome).inc()
        self.metrics.duration.labels(self.name).observe(duration_s)
        if cold:
            self.cold_starts += 1
        else:
            self.warm_starts += 1
        self.metrics.starts.labels(self.name, "cold" if cold else "warm").inc()
        if outcome != "ok":
            self.errors += 1
            self.metrics.errors.labels(self.name).inc()

    def throttled(self) -> None:
        self.throttles += 1
        self.metrics.throttles.labels(self.name).inc()

    def retried(self) -> None:
        self.retries += 1
        self.metrics.retries.labels(self.name).inc()

    def processed(self, count: int) -> None:
        self.records_processed += count
        self.metrics.records.labels(self.name, "processed").inc(count)

    def skipped(self, count: int = 1) -> None:
        self.records_skipped += count
        self.metrics.records.labels(self.name, "skipped").inc(count)

    def dead(self, reason: DeadLetterReason, count: int = 1) -> None:
        self.dead_lettered += count
        self.metrics.records.labels(self.name, "dead_lettered").inc(count)
        self.metrics.dead_letters.labels(self.name, reason).inc(count)

    def error(self, text: str) -> None:
        self.last_error = text[:MAX_ERROR_TEXT]
        self.last_error_at = self.clock.now()
