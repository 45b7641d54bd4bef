"""The adaptive limit against a simulated origin, on an injected clock.

The origin has a concurrency capacity: up to `capacity` requests run in `base_s`; beyond
it they queue, so latency grows in proportion (`base_s * in_flight / capacity`). Offered
load is saturating: every permit the limit allows is used, the harshest case for creep.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

from reelscale.core.clock import FakeClock
from reelscale.edge.adaptive import AdaptiveLimit, AdaptiveSettings

SETTINGS = AdaptiveSettings(initial_limit=20, min_limit=4, max_limit=1000, probe_interval_s=10)


def queueing_origin(*, capacity: int, base_s: float) -> Callable[[int], float]:
    return lambda in_flight: base_s * max(1.0, in_flight / capacity)


def simulate(
    limit: AdaptiveLimit,
    clock: FakeClock,
    *,
    seconds: float,
    rtt_of: Callable[[int], float],
    demand: int | None = None,
    rng: random.Random | None = None,
) -> list[int]:
    """Runs batches of `min(limit, demand)` requests; returns the limit after each batch."""
    rng = rng or random.Random(7)
    end = clock.monotonic() + seconds
    trace: list[int] = []
    while clock.monotonic() < end:
        in_flight = limit.limit if demand is None else min(limit.limit, demand)
        rtt = rtt_of(in_flight)
        clock.advance(rtt)
        for _ in range(in_flight):
            jittered = rtt * rng.uniform(0.95, 1.05)
            limit.observe(rtt_s=jittered, in_flight=in_flight, now=clock.monotonic())
        trace.append(limit.limit)
    return trace


def test_limit_grows_while_latency_stays_flat() -> None:
    clock, limit = FakeClock(), AdaptiveLimit(settings=SETTINGS)
    simulate(limit, clock, seconds=10, rtt_of=lambda _n: 0.010)
    assert limit.limit > 200
    assert limit.baseline_s is not None
    assert 0.009 < limit.baseline_s < 0.011


def test_limit_shrinks_under_queueing_to_near_capacity() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(settings=AdaptiveSettings(initial_limit=400, probe_interval_s=10))
    trace = simulate(limit, clock, seconds=20, rtt_of=queueing_origin(capacity=25, base_s=0.010))
    assert trace[0] <= 400
    settled = trace[len(trace) // 2 :]
    assert max(settled) <= 25 * 1.5, "queueing must pull the limit down to near capacity"
    assert min(settled) >= 25 * 0.4, "and not far below it"


def test_one_lucky_fast_sample_does_not_collapse_the_limit() -> None:
    clock, limit = FakeClock(), AdaptiveLimit(settings=SETTINGS)
    origin = queueing_origin(capacity=60, base_s=0.010)
    simulate(limit, clock, seconds=5, rtt_of=origin)
    before = limit.limit
    # A cache hit or a fast failure: 100 times faster than anything real. Vegas would take
    # it as the no-load latency and read every later sample as a 99% queue.
    limit.observe(rtt_s=0.0001, in_flight=before, now=clock.monotonic())
    trace = simulate(limit, clock, seconds=2, rtt_of=origin)
    assert min(trace) >= before * 0.75
    assert limit.baseline_s is not None
    assert limit.baseline_s > 0.009


def test_no_creep_under_mild_sustained_overload() -> None:
    clock, limit = FakeClock(), AdaptiveLimit(settings=SETTINGS, seed=3)
    capacity = 40
    trace = simulate(
        limit, clock, seconds=120, rtt_of=queueing_origin(capacity=capacity, base_s=0.010)
    )
    steady = list(trace[len(trace) // 4 :])
    # Saturating demand, for two minutes and a dozen probes: the limit stays within the
    # tolerated band above capacity instead of ratcheting upward (Gradient2's fault).
    assert max(steady) <= capacity * 1.5
    quarter = len(steady) // 4
    early = sum(steady[:quarter]) / quarter
    late = sum(steady[-quarter:]) / quarter
    assert late <= early * 1.1
    assert limit.probes >= 8


def test_mild_overload_from_bounded_demand_holds_the_limit() -> None:
    clock, limit = FakeClock(), AdaptiveLimit(settings=SETTINGS)
    capacity = 40
    origin = queueing_origin(capacity=capacity, base_s=0.010)
    # Demand 30% over capacity: latency sits in the dead band, so the limit neither grows
    # past demand nor collapses.
    trace = simulate(limit, clock, seconds=60, rtt_of=origin, demand=int(capacity * 1.3))
    assert max(trace[len(trace) // 2 :]) <= capacity * 1.5
    assert min(trace[len(trace) // 2 :]) >= capacity * 0.5


def test_baseline_follows_a_slower_origin_after_a_probe() -> None:
    clock, limit = FakeClock(), AdaptiveLimit(settings=SETTINGS)
    simulate(limit, clock, seconds=5, rtt_of=lambda _n: 0.010)
    # A deploy makes every request twice as slow, with capacity to spare: the old floor
    # must not be trusted forever, or the limit would sink to its minimum and stay there.
    trace = simulate(limit, clock, seconds=30, rtt_of=lambda _n: 0.020)
    assert limit.baseline_s is not None
    assert limit.baseline_s > 0.018
    assert trace[-1] > 100


def test_drops_shrink_the_limit() -> None:
    clock, limit = FakeClock(), AdaptiveLimit(settings=SETTINGS)
    simulate(limit, clock, seconds=2, rtt_of=lambda _n: 0.010)
    before = limit.estimated
    for _ in range(30):
        clock.advance(0.01)
        limit.observe_drop(now=clock.monotonic())
    assert limit.estimated < before


def test_probe_lowers_the_limit_for_one_window() -> None:
    clock, limit = FakeClock(), AdaptiveLimit(settings=SETTINGS)
    trace = simulate(limit, clock, seconds=25, rtt_of=queueing_origin(capacity=40, base_s=0.01))
    dips = sum(1 for a, b in itertools.pairwise(trace) if b <= a * 0.6)
    assert limit.probes >= 1
    assert dips >= 1


def test_with_reach_the_limit_grows_only_where_demand_reached_it() -> None:
    # Demand of 30 under a limit of 40 leaves it unused: latency measured at 30 says nothing
    # about 41, and growing on it is what let the limit drift above an origin's capacity.
    clock = FakeClock()
    limit = AdaptiveLimit(settings=AdaptiveSettings(initial_limit=40, probe_interval_s=1000))
    limit.set_reach({0: 1.0})
    simulate(limit, clock, seconds=5, rtt_of=lambda _n: 0.010, demand=30)
    assert limit.limit == 40
    # Without reach, half the limit used is enough to grow (the stand-alone law).
    clock, free = FakeClock(), AdaptiveLimit(settings=SETTINGS)
    simulate(free, clock, seconds=5, rtt_of=lambda _n: 0.010, demand=30)
    assert free.limit > 40


def test_a_kind_that_can_only_reach_part_of_the_limit_still_grows_it() -> None:
    # A class that may borrow up to 80% of the limit, alone, fills exactly that: its windows
    # count as using the limit, so a limit serving only it still follows capacity.
    clock = FakeClock()
    limit = AdaptiveLimit(settings=AdaptiveSettings(initial_limit=20, probe_interval_s=1000))
    limit.set_reach({3: 0.8})
    end = clock.monotonic() + 5
    while clock.monotonic() < end:
        in_flight = math.floor(limit.limit * 0.8)
        clock.advance(0.010)
        for _ in range(in_flight):
            limit.observe(rtt_s=0.010, in_flight=in_flight, now=clock.monotonic(), kind=3)
    assert limit.limit > 60


def test_the_limit_stops_growing_far_above_what_throughput_needs() -> None:
    # Bursty demand: a burst fills the limit now and then, without queueing, but on average
    # five requests are in flight. Growing on the bursts' latency would leave room for a
    # larger burst to queue at the service; the limit stays within busy_gain of the average.
    def run(settings: AdaptiveSettings) -> int:
        clock = FakeClock()
        limit = AdaptiveLimit(settings=settings)
        for batch in range(3000):
            in_flight = limit.limit if batch % 24 == 0 else 5
            clock.advance(0.010)
            for _ in range(in_flight):
                limit.observe(rtt_s=0.010, in_flight=in_flight, now=clock.monotonic())
        return limit.limit

    capped = AdaptiveSettings(initial_limit=20, probe_interval_s=1000)
    assert run(capped) <= 20
    uncapped = AdaptiveSettings(initial_limit=20, probe_interval_s=1000, busy_gain=None)
    assert run(uncapped) > 100
