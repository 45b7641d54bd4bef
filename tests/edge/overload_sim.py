"""The overload benchmark's origin and load, simulated on a virtual-time event loop.

The benchmark itself (edge/bench_overload.py) runs real processes over real sockets, and its
outcome moves with the machine's noise; this runs the same shape in virtual time, exactly
and in well under a second per run, so the limiter's behaviour under 10x load can be pinned
by tests: Poisson arrivals of the benchmark's mix, the real `PriorityLimiter` and
`AdaptiveLimit` (CRITICAL waits included, on the loop's timers), and an origin of `workers`
slots that queue FIFO beyond them, each request holding one for its class's cost.
"""

from __future__ import annotations

import asyncio
import math
import random
import selectors
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reelscale.edge.adaptive import AdaptiveLimit, AdaptiveSettings
from reelscale.edge.bench_origin import COST_UNITS
from reelscale.edge.limiter import PriorityLimiter, Rejected
from reelscale.edge.priority import Priority

MIX = {
    Priority.CRITICAL: 0.2,
    Priority.DEGRADED: 0.3,
    Priority.BEST_EFFORT: 0.2,
    Priority.BULK: 0.3,
}


class _Selector(selectors.DefaultSelector):
    """Nothing ever becomes readable: waiting for `timeout` is moving the clock on."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self.virtual = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("nothing scheduled: the simulation would wait for ever")
        self.virtual.now += max(0.0, timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self.now


class LoopClock:
    """The limiter's clock, reading the virtual loop's time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def monotonic(self) -> float:
        return self.loop.time()


@dataclass(frozen=True)
class Result:
    critical_availability: float
    critical_p99_s: float
    goodput_ratio: float


def default_limiter(clock: LoopClock) -> PriorityLimiter:
    adaptive = AdaptiveLimit(settings=AdaptiveSettings(min_limit=4, max_limit=2000))
    return PriorityLimiter(clock=clock, adaptive=adaptive, critical_wait_s=0.05)  # type: ignore[arg-type]


async def _offer(
    multiplier: float,
    seed: int,
    *,
    limiter_for: Callable[[LoopClock], PriorityLimiter],
    workers: int,
    unit_s: float,
    jitter: float,
    lag_s: float,
    warmup_s: float,
    measure_s: float,
) -> Result:
    loop = asyncio.get_running_loop()
    limiter = limiter_for(LoopClock(loop))
    slots = asyncio.Semaphore(workers)
    rng = random.Random(seed)  # a reproducible simulation
    mean_cost = sum(COST_UNITS[p] * w for p, w in MIX.items())
    rate = workers / unit_s / mean_cost * multiplier
    outcomes: list[tuple[Priority, bool, float, float]] = []

    async def request(priority: Priority, sent: float) -> None:
        outcome = await limiter.acquire(priority)
        if isinstance(outcome, Rejected):
            outcomes.append((priority, False, loop.time() - sent, sent))
            return
        try:
            async with slots:
                hold = COST_UNITS[priority] * unit_s * (1 + rng.uniform(-jitter, jitter))
                await asyncio.sleep(hold + rng.expovariate(1 / lag_s))
        finally:
            outcome.release()
        outcomes.append((priority, True, loop.time() - sent, sent))

    tasks: set[asyncio.Task[None]] = set()
    at, end = 0.0, warmup_s + measure_s
    classes, weights = list(MIX), list(MIX.values())
    while (at := at + rng.expovariate(rate)) < end:
        await asyncio.sleep(at - loop.time())
        task = asyncio.create_task(request(rng.choices(classes, weights)[0], loop.time()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    measured = [o for o in outcomes if o[3] >= warmup_s]
    critical = [o for o in measured if o[0] is Priority.CRITICAL]
    served = sorted(o[2] for o in critical if o[1])
    work = sum(COST_UNITS[o[0]] for o in measured if o[1])
    return Result(
        critical_availability=len(served) / len(critical),
        critical_p99_s=served[min(len(served) - 1, math.ceil(0.99 * len(served)) - 1)],
        goodput_ratio=work / measure_s / (workers / unit_s),
    )


def simulate(
    multiplier: float,
    seed: int,
    *,
    limiter_for: Callable[[LoopClock], PriorityLimiter] = default_limiter,
    workers: int = 20,
    unit_s: float = 0.040,
    jitter: float = 0.02,
    lag_s: float = 0.001,
    warmup_s: float = 4.0,
    measure_s: float = 8.0,
) -> Result:
    """One run of the benchmark's shape at `multiplier` times capacity, in virtual time."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(
            _offer(
                multiplier,
                seed,
                limiter_for=limiter_for,
                workers=workers,
                unit_s=unit_s,
                jitter=jitter,
                lag_s=lag_s,
                warmup_s=warmup_s,
                measure_s=measure_s,
            )
        )
    finally:
        loop.close()
