"""The partitioned limiter: guarantees, borrowing, reclaim, shedding order, metrics."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from reelscale.core.clock import FakeClock
from reelscale.edge.adaptive import AdaptiveLimit, AdaptiveSettings
from reelscale.edge.limiter import Permit, PriorityLimiter, Rejected
from reelscale.edge.priority import Priority
from reelscale.edge.utilisation import UtilisationMonitor

C, D, B, K = Priority.CRITICAL, Priority.DEGRADED, Priority.BEST_EFFORT, Priority.BULK


def fixed(limit: int) -> AdaptiveLimit:
    """An adaptive limit pinned to one value, so partition arithmetic is exact."""
    return AdaptiveLimit(
        settings=AdaptiveSettings(initial_limit=limit, min_limit=limit, max_limit=limit)
    )


def limiter(limit: int = 100, **options: object) -> PriorityLimiter:
    return PriorityLimiter(clock=FakeClock(), adaptive=fixed(limit), **options)  # type: ignore[arg-type]


def take(lim: PriorityLimiter, priority: Priority, count: int) -> list[Permit]:
    permits = []
    for _ in range(count):
        outcome = lim.try_acquire(priority)
        assert isinstance(outcome, Permit), f"{priority.name} refused: {outcome}"
        permits.append(outcome)
    return permits


def test_guarantees_follow_the_shares() -> None:
    lim = limiter(100)
    assert [lim.guarantee(p) for p in Priority] == [50, 25, 15, 10]
    assert limiter(4).guarantee(C) == 2
    assert limiter(1).guarantee(C) == 1  # never zero: a play must always be possible


def test_shedding_order_under_rising_mixed_load() -> None:
    lim = limiter(100)
    first_refusal: dict[Priority, int] = {}
    # Every class asks for one more slot per round and keeps what it gets.
    for round_ in range(100):
        for priority in Priority:
            outcome = lim.try_acquire(priority)
            if isinstance(outcome, Rejected) and priority not in first_refusal:
                first_refusal[priority] = round_
    order = sorted(first_refusal, key=lambda p: first_refusal[p])
    assert order == [K, B, D, C]
    assert first_refusal[K] < first_refusal[B] < first_refusal[D] < first_refusal[C]
    # Each class still holds at least its guarantee.
    assert all(lim.in_flight[p] >= lim.guarantee(p) for p in Priority)


def test_idle_capacity_is_borrowed_then_reclaimed_lowest_class_first() -> None:
    lim = limiter(100)
    bulk = take(lim, K, 80)  # alone, BULK borrows up to its ceiling (80% of the limit)
    assert isinstance(lim.try_acquire(K), Rejected)
    # CRITICAL's guarantee is honoured at once, although borrowers hold the slots.
    critical = take(lim, C, 50)
    assert lim.total_in_flight == 130
    # Over its guarantee, CRITICAL borrows only under the limit: not now.
    assert isinstance(lim.try_acquire(C), Rejected)
    # Now BEST_EFFORT borrows too (its guarantee is 15; take 5 more by borrowing later).
    best = take(lim, B, 15)
    for permit in bulk[:40]:
        permit.release()
    # 105 in flight: nobody may borrow. Free 20 more BULK slots: 85 in flight.
    assert isinstance(lim.try_acquire(B), Rejected)
    for permit in bulk[40:60]:
        permit.release()
    # At 85 in flight, BEST_EFFORT (ceiling 90) borrows again, BULK (ceiling 80) does not.
    assert isinstance(lim.try_acquire(K), Rejected)
    best += take(lim, B, 5)
    assert isinstance(lim.try_acquire(B), Rejected)
    assert lim.in_flight[C] == 50
    assert lim.in_flight[B] == 20
    for permit in [*critical, *best, *bulk[60:]]:
        permit.release()
    assert lim.total_in_flight == 0
    assert lim.in_flight == [0, 0, 0, 0]


def test_releasing_twice_counts_once() -> None:
    lim = limiter(10)
    (permit,) = take(lim, D, 1)
    permit.release()
    permit.release()
    permit.drop()
    assert lim.total_in_flight == 0
    assert lim.in_flight[D] == 0


def test_utilisation_sheds_lower_classes_first_and_never_critical() -> None:
    clock = FakeClock()
    cpu_used = [0.0]
    monitor = UtilisationMonitor(clock=clock, cpu_seconds=lambda: cpu_used[0])
    lim = PriorityLimiter(clock=clock, adaptive=fixed(100), utilisation=monitor)

    def shed() -> list[Priority]:
        return [p for p in Priority if isinstance(lim.try_acquire(p), Rejected)]

    monitor.sample(lag_s=0.0)
    assert shed() == []
    monitor.sample(lag_s=0.060)
    assert shed() == [K]
    monitor.sample(lag_s=0.150)
    assert shed() == [B, K]
    monitor.sample(lag_s=0.300)
    assert shed() == [D, B, K]
    assert lim.shed[(D, "loop_lag")] == 1
    # Lag falls gently (one late tick is not forgotten at once), then stops shedding.
    for _ in range(40):
        clock.advance(0.05)
        monitor.sample(lag_s=0.0)
    assert shed() == []
    # CPU: 90% of a core for the last interval sheds BULK and BEST_EFFORT.
    clock.advance(1.0)
    cpu_used[0] += 0.9
    monitor.sample(lag_s=0.0)
    assert monitor.cpu == pytest.approx(0.9)
    assert shed() == [B, K]
    assert lim.shed[(K, "cpu")] == 1


async def test_critical_may_wait_briefly_for_a_freed_slot() -> None:
    lim = limiter(2, critical_wait_s=1.0)
    held = take(lim, C, 2)
    waiting = asyncio.create_task(lim.acquire(C))
    await asyncio.sleep(0)
    assert not waiting.done()
    held[0].release()
    assert isinstance(await waiting, Permit)
    # Other classes never wait, and CRITICAL's wait is bounded.
    lim.critical_wait_s = 0.01
    assert isinstance(await lim.acquire(C), Rejected)
    assert isinstance(await lim.acquire(K), Rejected)


async def test_after_critical_waits_lower_classes_keep_guarantees_but_stop_borrowing() -> None:
    # What the overload benchmark hit at 10x: BEST_EFFORT had borrowed slots it holds eight
    # times as long as a play, and a burst of plays queued behind them until their waits
    # ran out. Once CRITICAL has had to wait, nobody borrows for `critical_pressure_s`.
    clock = FakeClock()
    lim = PriorityLimiter(
        clock=clock, adaptive=fixed(20), critical_wait_s=1.0, critical_pressure_s=0.15
    )
    critical = take(lim, C, 17)  # over its guarantee of 10, borrowing up to the limit
    take(lim, B, 3)  # BEST_EFFORT's guarantee: the limit is full
    waiting = asyncio.create_task(lim.acquire(C))
    await asyncio.sleep(0)
    critical[0].release()
    assert isinstance(await waiting, Permit)
    for permit in critical[1:9]:
        permit.release()  # 12 in flight: under BEST_EFFORT's ceiling of 18
    assert isinstance(lim.try_acquire(B), Rejected)  # ... but no borrowing now
    assert isinstance(lim.try_acquire(D), Permit)  # guarantees still hold
    clock.advance(0.16)
    assert isinstance(lim.try_acquire(B), Permit)  # the pressure is over


def test_metrics_expose_limit_in_flight_and_shed_counts() -> None:
    registry = CollectorRegistry()
    lim = PriorityLimiter(clock=FakeClock(), adaptive=fixed(10), registry=registry)
    take(lim, C, 3)
    lim.reject(K, "rate_limit")
    text = generate_latest(registry).decode()
    assert "reelscale_edge_concurrency_limit 10.0" in text
    assert 'reelscale_edge_in_flight{priority="critical"} 3.0' in text
    assert 'reelscale_edge_shed_total{priority="bulk",reason="rate_limit"} 1.0' in text
    assert 'reelscale_edge_admitted_total{priority="critical"} 3.0' in text


def test_partitions_must_cover_every_class_and_fit_the_limit() -> None:
    from reelscale.edge.limiter import DEFAULT_PARTITIONS, Partition

    with pytest.raises(ValueError, match="missing"):
        PriorityLimiter(clock=FakeClock(), partitions={C: DEFAULT_PARTITIONS[C]})
    with pytest.raises(ValueError, match="more than"):
        PriorityLimiter(
            clock=FakeClock(),
            partitions={
                p: Partition(share=0.5, borrow_ceiling=1, retry_after_s=1) for p in Priority
            },
        )


def test_rejection_is_cheap() -> None:
    lim = limiter(10)
    take(lim, C, 10)
    started = time.perf_counter()
    for _ in range(10_000):
        lim.try_acquire(K)
    per_rejection = (time.perf_counter() - started) / 10_000
    assert per_rejection < 0.0005  # a sanity bound; it is a few microseconds
