"""Functions: handlers invoked with batches of records from the event stream, like Lambda.

    registry = FunctionRegistry()

    @registry.function("analytics-playback", stream="playback", batch_size=500)
    async def handle(batch: list[Record]) -> BatchFailure | None: ...

    runtime = FunctionsRuntime(store, registry, registry_metrics=metrics.registry)

Semantics (delivery, ordering, retries, bisection, dead letters, concurrency, cold starts)
are in docs/functions.md. The runtime builds only on the `EventStore` contract, so it
runs the same on the embedded log and on NATS.
"""

from __future__ import annotations

from reelscale.events.records import TRIM_HORIZON, Record, StartAt
from reelscale.functions.registry import FunctionRegistry
from reelscale.functions.runtime import FunctionsRuntime
from reelscale.functions.schemas import DeadLetter, FunctionStatus, ReplayResult
from reelscale.functions.spec import BatchFailure, FunctionSpec

__all__ = [
    "TRIM_HORIZON",
    "BatchFailure",
    "DeadLetter",
    "FunctionRegistry",
    "FunctionSpec",
    "FunctionStatus",
    "FunctionsRuntime",
    "Record",
    "ReplayResult",
    "StartAt",
]
