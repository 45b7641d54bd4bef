"""Functions fixtures: the runtime over a real event store, on both backends.

The `backend` fixture (from tests/events) gives each test the embedded log on a fake
clock and NATS JetStream (skipped with the reason when unreachable, failed under CI=true).
`Rig` builds a runtime over it. Backoff sleeps go through a recorder: it notes each delay
and moves the fake clock on by it, so retry tests do not wait in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from prometheus_client import CollectorRegistry

from reelscale.core.clock import Clock, SystemClock
from reelscale.functions import FunctionRegistry, FunctionsRuntime
from reelscale.functions.spec import FunctionSpec
from tests.events.conftest import (  # noqa: F401 - fixtures used by this package's tests
    Backend,
    backend,
    entries,
    event,
    store_backend_name,
)


@dataclass
class Rig:
    backend: Backend
    registry: FunctionRegistry = field(default_factory=FunctionRegistry)
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    sleeps: list[float] = field(default_factory=list)

    @property
    def clock(self) -> Clock:
        return self.backend.clock or SystemClock()

    @property
    def store(self) -> Any:
        return self.backend.store

    def name(self, prefix: str = "fn") -> str:
        """A function name of its own, whose dead-letter stream is cleaned up afterwards."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.backend.streams += [f"dlq-{name}"]
        return name

    def stream(self) -> str:
        return self.backend.stream_name()

    def add(self, **options: Any) -> FunctionSpec:
        options.setdefault("name", self.name())
        return self.registry.add(FunctionSpec(**options))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.backend.clock is not None:
            self.backend.clock.advance(seconds)
        await asyncio.sleep(0)

    @contextlib.asynccontextmanager
    async def running(self, **options: Any) -> AsyncIterator[FunctionsRuntime]:
        options.setdefault("clock", self.clock)
        # a registry per runtime, as per app; `metric()` reads the latest one
        self.metrics = options.setdefault("registry_metrics", CollectorRegistry())
        options.setdefault("sleep", self.sleep)
        options.setdefault("refresh_s", 0.1)
        runtime = FunctionsRuntime(self.store, self.registry, **options)
        await runtime.start()
        try:
            yield runtime
        finally:
            await runtime.stop()

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.get_sample_value(name, labels) or 0.0


@pytest_asyncio.fixture
async def rig(backend: Backend) -> Rig:  # noqa: F811 - the fixture imported above
    return Rig(backend)


async def eventually(
    check: Callable[[], Any], *, timeout_s: float = 15.0, interval_s: float = 0.02
) -> None:
    """Wait until `check()` is true (awaiting it if it returns an awaitable)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout_s} s")
        await asyncio.sleep(interval_s)
