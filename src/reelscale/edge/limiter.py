"""The adaptive concurrency limit, partitioned by priority.

Each class is guaranteed a share of the limit. A request within its class's guarantee is
always admitted (the utilisation check aside). Above it, the class borrows idle capacity,
but only while the total in flight is under the class's borrow ceiling, a fraction of the
limit that is lower for lower classes. That one rule gives the order of shedding:

- as load rises, BULK stops borrowing first (at 80% of the limit by default), then
  BEST_EFFORT (90%), then DEGRADED (95%); CRITICAL may borrow up to the whole limit;
- when a class that was idle needs its guarantee back, it is admitted at once even if
  borrowers hold the slots (requests are not pre-empted, so the total may exceed the limit
  for about one request time), and no borrower is admitted until the total falls back
  under its ceiling, so borrowed slots return lowest class first;
- while a CRITICAL request waits for a slot (`critical_wait_s`), no other class is
  admitted, not even within its guarantee, and each freed slot is handed to the waiter:
  when CRITICAL alone needs more than its share, the lower classes' guarantees yield to it;
- and for `critical_pressure_s` after a CRITICAL request had to wait, the lower classes keep
  their guarantees but do not borrow. A borrowed slot returns only when its request ends,
  and a browse row holds one about eight times as long as a play: in the overload
  benchmark at 10x, plays queued behind borrowed BEST_EFFORT slots until their waits ran
  out. Bursts of plays come close together, so after one the lending stops for a while.

This follows concurrency-limits' partitioned limiter (admit within the partition's share
even when the total is at the limit), adding ordered ceilings so classes are not shed
together.

Admission and rejection are synchronous: a few integer comparisons, no awaits, no locks
(the event loop is the only thread touching the counters). CRITICAL alone may wait, for a
bounded few milliseconds, and is then handed the next slot any request frees.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from reelscale.core.clock import Clock
from reelscale.edge.adaptive import AdaptiveLimit
from reelscale.edge.priority import Priority
from reelscale.edge.utilisation import UtilisationMonitor


@dataclass(frozen=True)
class Partition:
    """A class's guaranteed share of the limit, how far it may borrow, how long to back off."""

    share: float
    borrow_ceiling: float
    retry_after_s: float


DEFAULT_PARTITIONS: Mapping[Priority, Partition] = {
    Priority.CRITICAL: Partition(share=0.50, borrow_ceiling=1.00, retry_after_s=1),
    Priority.DEGRADED: Partition(share=0.25, borrow_ceiling=0.95, retry_after_s=2),
    Priority.BEST_EFFORT: Partition(share=0.15, borrow_ceiling=0.90, retry_after_s=5),
    Priority.BULK: Partition(share=0.10, borrow_ceiling=0.80, retry_after_s=30),
}

REASONS = ("concurrency", "cpu", "loop_lag", "rate_limit")


@dataclass(frozen=True)
class Rejected:
    """Why a request was refused and when to come back; built once, reused."""

    priority: Priority
    reason: str
    retry_after_s: float


class Permit:
    """One admitted request. Release it exactly once, with its latency or as dropped."""

    __slots__ = ("_done", "_limiter", "priority", "started")

    def __init__(self, limiter: PriorityLimiter, priority: Priority, started: float) -> None:
        self._limiter = limiter
        self.priority = priority
        self.started = started
        self._done = False

    def release(self) -> None:
        """The request completed normally: its latency becomes a sample."""
        if not self._done:
            self._done = True
            self._limiter._release(self, sample=True, dropped=False)

    def drop(self) -> None:
        """It timed out or was refused downstream for overload: a congestion signal."""
        if not self._done:
            self._done = True
            self._limiter._release(self, sample=False, dropped=True)

    def ignore(self) -> None:
        """It ended without saying anything about load (cancelled, rejected by us)."""
        if not self._done:
            self._done = True
            self._limiter._release(self, sample=False, dropped=False)


class PriorityLimiter:
    """Admits requests under an adaptive limit partitioned by `Priority`."""

    def __init__(
        self,
        *,
        clock: Clock,
        adaptive: AdaptiveLimit | None = None,
        partitions: Mapping[Priority, Partition] | None = None,
        utilisation: UtilisationMonitor | None = None,
        registry: CollectorRegistry | None = None,
        critical_wait_s: float = 0.0,
        max_critical_waiters: int = 64,
        critical_pressure_s: float = 0.15,
    ) -> None:
        self.clock = clock
        self.adaptive = adaptive or AdaptiveLimit()
        chosen = dict(partitions or DEFAULT_PARTITIONS)
        missing = set(Priority) - set(chosen)
        if missing:
            raise ValueError(f"partitions missing for {sorted(p.name for p in missing)}")
        if sum(p.share for p in chosen.values()) > 1.0 + 1e-9:
            raise ValueError("guaranteed shares add up to more than the whole limit")
        self.partitions = [chosen[p] for p in Priority]
        self.adaptive.set_reach({p: chosen[p].borrow_ceiling for p in Priority})
        self.utilisation = utilisation
        self.critical_wait_s = critical_wait_s
        self.max_critical_waiters = max_critical_waiters
        self.in_flight = [0] * len(Priority)
        self.total_in_flight = 0
        self.admitted = [0] * len(Priority)
        self.shed: dict[tuple[Priority, str], int] = {
            (p, reason): 0 for p in Priority for reason in REASONS
        }
        self._rejections = {
            (p, reason): Rejected(p, reason, self.partitions[p].retry_after_s)
            for p in Priority
            for reason in REASONS
        }
        self._waiters: collections.deque[asyncio.Future[Permit | None]] = collections.deque()
        self.critical_pressure_s = critical_pressure_s
        self._pressed_until = -math.inf
        if registry is not None:
            registry.register(_LimiterCollector(self))

    @property
    def limit(self) -> int:
        return self.adaptive.limit

    def guarantee(self, priority: Priority) -> int:
        """Slots this class is always admitted to, at the current limit."""
        slots = math.floor(self._limit_for(priority) * self.partitions[priority].share)
        # A limit too small to give CRITICAL a slot would refuse every play: never that.
        return max(1, slots) if priority is Priority.CRITICAL else slots

    def _limit_for(self, priority: Priority) -> int:
        # A probe lowers the limit for a window to drain the queue and re-measure the floor;
        # CRITICAL keeps the full limit meanwhile (the others, cut to the probe's fraction,
        # still drain it), so probing never costs a play.
        if priority is Priority.CRITICAL:
            return self.adaptive.estimated_limit
        return self.adaptive.limit

    def try_acquire(self, priority: Priority) -> Permit | Rejected:
        """Admit now or refuse now; never waits."""
        utilisation = self.utilisation
        if utilisation is not None and utilisation.shedding[priority]:
            return self.reject(priority, utilisation.reason[priority])
        if not self._has_room(priority):
            return self.reject(priority, "concurrency")
        return self._admit(priority)

    async def acquire(self, priority: Priority) -> Permit | Rejected:
        """As `try_acquire`, except that CRITICAL may wait up to `critical_wait_s`.

        A waiting CRITICAL request is handed the next slot any request frees (admitted
        inside `_release`, before anyone else can take it), so while CRITICAL waits, lower
        classes arriving in the meantime cannot win the slot: that is what lets CRITICAL
        take more than its guaranteed share from saturating lower classes."""
        utilisation = self.utilisation
        if (
            priority is not Priority.CRITICAL
            or self.critical_wait_s <= 0
            or self._has_room(priority)
            or len(self._waiters) >= self.max_critical_waiters
            or (utilisation is not None and utilisation.shedding[priority])
        ):
            return self.try_acquire(priority)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Permit | None] = loop.create_future()
        self._waiters.append(waiter)
        self._pressed_until = self.clock.monotonic() + self.critical_pressure_s
        expiry = loop.call_later(self.critical_wait_s, _expire, waiter)
        try:
            permit = await waiter
        except BaseException:
            # Cancelled (the client went away), perhaps just after a slot was handed over.
            if waiter.done() and not waiter.cancelled() and (handed := waiter.result()):
                handed.ignore()
            raise
        finally:
            expiry.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if permit is None:
            return self.reject(priority, "concurrency")
        return permit

    def reject(self, priority: Priority, reason: str) -> Rejected:
        """Count a refusal and return its (shared, prebuilt) description."""
        self.shed[(priority, reason)] += 1
        return self._rejections[(priority, reason)]

    def _has_room(self, priority: Priority) -> bool:
        if self._waiters and priority is not Priority.CRITICAL:
            return False  # CRITICAL is waiting: every freed slot is its, guarantees or not
        if self.in_flight[priority] < self.guarantee(priority):
            return True
        if priority is not Priority.CRITICAL and self.clock.monotonic() < self._pressed_until:
            return False
        ceiling = self._limit_for(priority) * self.partitions[priority].borrow_ceiling
        return self.total_in_flight < ceiling

    def _admit(self, priority: Priority) -> Permit:
        self.in_flight[priority] += 1
        self.total_in_flight += 1
        self.admitted[priority] += 1
        return Permit(self, priority, self.clock.monotonic())

    def _release(self, permit: Permit, *, sample: bool, dropped: bool) -> None:
        in_flight = self.total_in_flight
        self.in_flight[permit.priority] -= 1
        self.total_in_flight -= 1
        now = self.clock.monotonic()
        if sample:
            self.adaptive.observe(
                rtt_s=now - permit.started, in_flight=in_flight, now=now, kind=permit.priority
            )
        elif dropped:
            self.adaptive.observe_drop(now=now)
        while self._waiters and self._has_room(Priority.CRITICAL):
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(self._admit(Priority.CRITICAL))  # the slot, handed over
                break


def _expire(waiter: asyncio.Future[Permit | None]) -> None:
    """A CRITICAL wait ran out: answer None (refuse), unless a slot was handed over."""
    if not waiter.done():
        waiter.set_result(None)


class _LimiterCollector:
    """Reads the limiter's plain counters at scrape time, so admission pays nothing."""

    def __init__(self, limiter: PriorityLimiter) -> None:
        self.limiter = limiter

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        limiter = self.limiter
        adaptive = limiter.adaptive
        yield GaugeMetricFamily(
            "reelscale_edge_concurrency_limit",
            "The adaptive concurrency limit in force now (lowered during a probe).",
            value=adaptive.limit,
        )
        baseline = GaugeMetricFamily(
            "reelscale_edge_baseline_rtt_seconds",
            "The no-load latency each priority's requests are compared with (0 before one).",
            labels=["priority"],
        )
        for priority in Priority:
            baseline.add_metric([priority.label], adaptive.baselines.get(priority, 0.0))
        yield baseline
        in_flight = GaugeMetricFamily(
            "reelscale_edge_in_flight",
            "Admitted requests in flight, by priority.",
            labels=["priority"],
        )
        guaranteed = GaugeMetricFamily(
            "reelscale_edge_guaranteed_slots",
            "Slots each priority is guaranteed at the current limit.",
            labels=["priority"],
        )
        admitted = CounterMetricFamily(
            "reelscale_edge_admitted", "Requests admitted, by priority.", labels=["priority"]
        )
        for priority in Priority:
            in_flight.add_metric([priority.label], limiter.in_flight[priority])
            guaranteed.add_metric([priority.label], limiter.guarantee(priority))
            admitted.add_metric([priority.label], limiter.admitted[priority])
        shed = CounterMetricFamily(
            "reelscale_edge_shed",
            "Requests refused, by priority and reason.",
            labels=["priority", "reason"],
        )
        for (priority, reason), count in limiter.shed.items():
            shed.add_metric([priority.label, reason], count)
        yield from (in_flight, guaranteed, admitted, shed)
        if limiter.utilisation is not None:
            yield GaugeMetricFamily(
                "reelscale_edge_cpu_utilisation",
                "Event-loop thread CPU per wall second, as a fraction of one core.",
                value=limiter.utilisation.cpu,
            )
            yield GaugeMetricFamily(
                "reelscale_edge_loop_lag_seconds",
                "Smoothed event-loop lag.",
                value=limiter.utilisation.loop_lag_s,
            )
