"""The edge runtime: its sampler sees a blocked event loop and sheds BULK for it."""

from __future__ import annotations

import asyncio
import threading
import time

from prometheus_client import CollectorRegistry, generate_latest

from reelscale.core.clock import SystemClock
from reelscale.edge.limiter import Rejected
from reelscale.edge.middleware import EdgeMiddleware
from reelscale.edge.priority import Priority
from reelscale.edge.ratelimit import MemoryBucketStore
from reelscale.edge.runtime import EdgeRuntime
from reelscale.edge.utilisation import UtilisationMonitor


async def test_runtime_samples_loop_lag_and_sheds_bulk_while_the_loop_is_blocked() -> None:
    registry = CollectorRegistry()
    runtime = EdgeRuntime(clock=SystemClock(), registry=registry)
    assert isinstance(runtime.rate_limiter.store, MemoryBucketStore)
    await runtime.start()
    try:
        await asyncio.sleep(0.12)  # a couple of quiet samples
        time.sleep(0.3)  # a handler that blocks the loop (what the sampler exists to see)
        await asyncio.sleep(0.06)
        assert runtime.utilisation.loop_lag_s > 0.1
        assert isinstance(runtime.limiter.try_acquire(Priority.BULK), Rejected)
        permit = runtime.limiter.try_acquire(Priority.CRITICAL)
        assert not isinstance(permit, Rejected)
        permit.release()
        assert "reelscale_edge_loop_lag_seconds" in generate_latest(registry).decode()
    finally:
        await runtime.stop()


def test_middleware_options_build_the_middleware() -> None:
    runtime = EdgeRuntime(clock=SystemClock(), registry=CollectorRegistry())

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called")

    middleware = EdgeMiddleware(app, **runtime.middleware_options())
    assert middleware.limiter is runtime.limiter


async def test_cpu_spent_in_worker_threads_does_not_count_as_a_busy_loop() -> None:
    """Password hashing or a model build in a thread must not shed the loop's requests."""
    monitor = UtilisationMonitor(clock=SystemClock())
    monitor.sample(lag_s=0.0)
    stop = time.perf_counter() + 0.3

    def burn() -> None:
        while time.perf_counter() < stop:
            pass

    worker = threading.Thread(target=burn)
    worker.start()
    while worker.is_alive():
        await asyncio.sleep(0.01)  # the loop itself stays idle
    monitor.sample(lag_s=0.0)
    assert monitor.cpu < 0.5
    assert not any(monitor.shedding)
