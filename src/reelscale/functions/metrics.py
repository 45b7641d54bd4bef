"""Prometheus metrics of the functions runtime, registered on the app's registry.

Named after Lambda's: Invocations, Errors, Throttles, ConcurrentExecutions, Duration,
IteratorAge, plus cold and warm starts and dead letters by reason.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class FunctionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.invocations = Counter(
            "reelscale_function_invocations_total",
            "Handler invocations, by outcome (ok, error, partial, timeout).",
            ["function", "outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "reelscale_function_errors_total",
            "Invocations that failed (raised, timed out or reported failed records).",
            ["function"],
            registry=registry,
        )
        self.throttles = Counter(
            "reelscale_function_throttles_total",
            "Invocations that had to wait for a free slot under the function's concurrency.",
            ["function"],
            registry=registry,
        )
        self.retries = Counter(
            "reelscale_function_retries_total",
            "Re-invocations of a failed batch or part of one (bisected halves included).",
            ["function"],
            registry=registry,
        )
        self.records = Counter(
            "reelscale_function_records_total",
            "Records by what became of them: processed, skipped (type filter), dead_lettered.",
            ["function", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "reelscale_function_dead_letters_total",
            "Records sent to the dead-letter stream, by reason.",
            ["function", "reason"],
            registry=registry,
        )
        self.starts = Counter(
            "reelscale_function_starts_total",
            "Invocations by start kind: cold (a new function instance) or warm (reused).",
            ["function", "kind"],
            registry=registry,
        )
        self.duration = Histogram(
            "reelscale_function_duration_seconds",
            "Wall time of one handler invocation.",
            ["function"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.concurrent = Gauge(
            "reelscale_function_concurrent_executions",
            "Invocations running now.",
            ["function"],
            registry=registry,
        )
        self.lag_records = Gauge(
            "reelscale_function_lag_records",
            "Records appended after the function's checkpoints, summed over shards.",
            ["function"],
            registry=registry,
        )
        self.iterator_age = Gauge(
            "reelscale_function_iterator_age_seconds",
            "Age of the oldest record the function has not processed (its worst shard).",
            ["function"],
            registry=registry,
        )
