"""The total concurrency limit, learned from latency.

The controller takes the best of three published designs and avoids their known faults.

- From Vegas (Netflix concurrency-limits): compare the current latency with the no-load
  latency, and grow only while there is no queueing. Vegas takes the single smallest RTT
  ever seen as the no-load latency, so one lucky fast sample (a cache hit, a request that
  failed fast) makes every later sample look like heavy queueing and the limit collapses.
  Here the baseline is a percentile of a whole window of samples, so a handful of outliers
  cannot move it, and it is re-measured periodically.
- From Gradient2: shrink in proportion to the latency gradient, bounded per step. Its
  long-term RTT is an average of recent RTTs, so under a mild, sustained overload that
  average catches up with the inflated latency, the gradient returns to 1, and the
  `+queue_size` growth term pushes the limit up and up. Here the baseline may only fall
  between probes (a window faster than the baseline is evidence of a lower floor), and may
  only rise from a probe window run at a reduced limit, where the queue has drained. And
  growth needs headroom: latency within `grow_below` of the baseline. Between
  `grow_below` and `shrink_above` the limit holds, so a mild overload stops growth instead
  of feeding it.
- From Envoy's adaptive concurrency filter: the periodic min-RTT re-measurement with the
  concurrency pinned low, jittered so that replicas do not probe together. Envoy pins to a
  tiny fixed concurrency, which sheds almost everything for the probe's duration; a
  fraction of the current limit drains the queue with far less collateral, because queues
  only form above capacity.

Samples arrive from `observe` on the request path (an append, nothing more); the control
law runs once per window, when a window has both lasted `window_s` and gathered
`min_samples` samples.

Requests of different kinds cost different amounts (a segment read against a ranked browse
row), and a window's latency percentile then says more about which kinds it happened to hold
than about queueing: a window without the slow kind looks like a new floor, the next one
with it like heavy queueing, and the limit collapses. So each sample carries a `kind` (the
limiter passes the request's priority class), every kind has its own baseline, kept by the
rules above, and the control law reads the window's percentile of each sample's latency
divided by its kind's baseline: 1.0 means no queueing whatever the mix. Queueing delay adds
the same time to every kind, so the cheap kinds, whose ratio it raises most, set the pace:
the limit protects the latency of the cheapest requests, which are the play path. With a
single kind this is exactly the law above.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class AdaptiveSettings:
    initial_limit: float = 20.0
    min_limit: float = 4.0
    max_limit: float = 2000.0
    window_s: float = 0.25  # a window closes after this long ...
    min_samples: int = 20  # ... and this many samples, whichever is later
    max_samples: int = 2000  # bounds memory and sorting cost: a full window closes early
    percentile: float = 0.9  # of each window's RTTs, both for samples and the baseline
    grow_below: float = 1.15  # grow while the window RTT is under baseline times this
    shrink_above: float = 1.4  # shrink when it is over baseline times this
    max_shrink_step: float = 0.5  # never cut the limit by more than half in one window
    drop_backoff: float = 0.9  # a window with dropped requests (timeouts, 503s) shrinks
    probe_interval_s: float = 30.0  # how often the baseline is re-measured
    probe_jitter: float = 0.25  # +-25% so replicas do not probe in step
    probe_fraction: float = 0.5  # the limit during a probe, as a fraction of the limit
    utilised_fraction: float = 0.5  # only grow when the window used this much of the limit
    min_kind_samples: int = 5  # a kind's baseline moves only on this many samples in a window
    congestion_memory_s: float = 10.0  # after a cut, grow one at a time for this long
    busy_gain: float | None = 1.5  # no growth past this multiple of the window's busy slots


class AdaptiveLimit:
    """A concurrency limit that follows the service's capacity.

    Call `observe(rtt_s=..., in_flight=..., now=...)` for every completed request and
    `observe_drop(now=...)` for every request that timed out or was refused downstream.
    `limit` is the effective limit now (lowered during a probe)."""

    def __init__(self, *, settings: AdaptiveSettings | None = None, seed: int = 0) -> None:
        self.settings = s = settings or AdaptiveSettings()
        if not 0 < s.percentile <= 1 or s.grow_below >= s.shrink_above:
            raise ValueError("need 0 < percentile <= 1 and grow_below < shrink_above")
        self._rng = random.Random(seed)  # noqa: S311 - probe jitter, not a secret
        self.estimated = min(max(s.initial_limit, s.min_limit), s.max_limit)
        self.baselines: dict[int, float] = {}  # per kind: the no-load latency percentile
        self.last_window_ratio: float | None = None
        # The first window is a probe: a baseline measured at the full initial limit could
        # already include queueing, and would then be trusted until the next probe.
        self.probing = True
        self.windows = 0
        self.probes = 0
        self._samples: list[float] = []
        self._kinds: list[int] = []
        self._drops = 0
        self._max_in_flight = 0
        self.reach: dict[int, float] = {}  # see `set_reach`
        self._window_start: float | None = None
        self._changed_at = -math.inf
        self._congested_until = -math.inf
        self._congested_at = math.inf  # the estimate at which congestion was last seen
        self._next_probe: float | None = None

    @property
    def limit(self) -> int:
        """Permits available now: the estimate, or its probe fraction while probing."""
        s = self.settings
        value = self.estimated * s.probe_fraction if self.probing else self.estimated
        return max(int(s.min_limit), math.floor(value))

    @property
    def estimated_limit(self) -> int:
        """The estimate itself, probe or not (the limiter lets CRITICAL use it in a probe)."""
        return max(int(self.settings.min_limit), math.floor(self.estimated))

    @property
    def baseline_s(self) -> float | None:
        """The baseline of kind 0 (the only kind when callers give none)."""
        return self.baselines.get(0)

    def observe(self, *, rtt_s: float, in_flight: int, now: float, kind: int = 0) -> None:
        """Record one completed request; closes the window when it is due."""
        if self._window_start is None:
            self._window_start = now
        if self.probing and now - rtt_s < self._window_start:
            # Admitted before the probe lowered the limit: it waited in the old queue, so
            # it says nothing about the floor. Counting it would keep a stale baseline.
            return
        if now - rtt_s < self._changed_at:
            # Admitted under the previous limit: it says nothing about this one. Judging a
            # new limit by the old queue makes the law overshoot both ways (a cut followed
            # by more cuts while the old queue drains, growth on top of growth).
            return
        self._samples.append(rtt_s)
        self._kinds.append(kind)
        if in_flight > self._max_in_flight:
            self._max_in_flight = in_flight
        self._maybe_close(now)

    def set_reach(self, reach: Mapping[int, float]) -> None:
        """How much of the limit each kind's requests can fill (a partitioned limiter lets
        lower classes borrow only up to a ceiling).

        With it, a window counts as using the limit only if its in-flight peak reached the
        highest reach among the kinds it served: the limit grows only where it held demand
        back. Without it, `utilised_fraction` (half) is enough, which let a limit that
        demand seldom reached climb window after window on latencies measured far below
        it, until the first burst found the service queueing (the overload benchmark at
        1x capacity saw the limit at 1.5 times the origin's workers)."""
        self.reach = dict(reach)

    def observe_drop(self, *, now: float) -> None:
        """Record a request that timed out or was refused for overload downstream."""
        if self._window_start is None:
            self._window_start = now
        self._drops += 1
        self._maybe_close(now)

    def _maybe_close(self, now: float) -> None:
        s = self.settings
        assert self._window_start is not None
        count = len(self._samples) + self._drops
        full = count >= s.max_samples
        due = now - self._window_start >= s.window_s and count >= s.min_samples
        if full or due:
            self._close_window(now)

    def _close_window(self, now: float) -> None:
        s = self.settings
        samples, kinds = self._samples, self._kinds
        drops, used = self._drops, self._max_in_flight
        limit_in_window = self.limit
        window_s = now - (self._window_start if self._window_start is not None else now)
        if self.reach and kinds:
            utilised = max(self.reach.get(kind, 1.0) for kind in set(kinds))
        else:
            utilised = s.utilised_fraction
        self._samples, self._kinds, self._drops, self._max_in_flight = [], [], 0, 0
        self._window_start = now
        self.windows += 1
        if self._next_probe is None:
            self._next_probe = now + self._probe_delay()
        by_kind: dict[int, list[float]] = {}
        for kind, rtt in zip(kinds, samples, strict=True):
            by_kind.setdefault(kind, []).append(rtt)
        window_rtts = {
            kind: _percentile(rtts, s.percentile)
            for kind, rtts in by_kind.items()
            if len(rtts) >= s.min_kind_samples or kind not in self.baselines
        }

        if self.probing:
            # The probe window ran at a fraction of the limit, so its queue had drained:
            # its latency is the best evidence of the no-load floor, and may raise it.
            self.probing = False
            self._next_probe = now + self._probe_delay()
            if not drops:
                for kind, window_rtt in window_rtts.items():
                    previous = self.baselines.get(kind)
                    self.baselines[kind] = window_rtt
                    if previous is not None and window_rtt * s.grow_below < previous:
                        # Far below the old floor: that floor held queueing, and this one
                        # may too. Probe again after one normal window, not in half a minute.
                        self._next_probe = now
            return
        if not samples:
            self.estimated = max(s.min_limit, self.estimated * s.drop_backoff)
            return
        for kind, window_rtt in window_rtts.items():
            baseline = self.baselines.get(kind)
            if baseline is None or window_rtt < baseline:
                # Only a whole window's percentile can lower a floor, never one sample.
                self.baselines[kind] = window_rtt
        ratios = [
            rtt / baseline if (baseline := self.baselines.get(kind, 0.0)) > 0 else 1.0
            for kind, rtt in zip(kinds, samples, strict=True)
            if kind in self.baselines
        ]
        ratio = _percentile(ratios, s.percentile) if ratios else 1.0
        self.last_window_ratio = ratio
        if now >= self._next_probe:
            self.probing = True
            self.probes += 1
        # Whole requests: a class with a fractional ceiling fills it to either side of it.
        needed = float(math.floor(utilised * limit_in_window))
        if (
            s.busy_gain is not None
            and window_s > 0
            and self._above_busy(kinds, window_s, limit_in_window)
        ):
            needed = math.inf  # grow no more
        self._adjust(ratio, drops, used, needed, now)

    def _above_busy(self, kinds: list[int], window_s: float, limit: int) -> bool:
        """Is the limit already `busy_gain` times what the window's throughput needed?

        By Little's law, the window's requests, each at its kind's no-load latency, kept
        `busy` slots occupied on average: the concurrency its throughput needs without
        queueing (BBR's bandwidth-delay product, for requests). A limit far above it adds
        no throughput, only room for bursts to queue at the service; at 1x capacity the
        overload benchmark saw the limit climb to 1.45 times the origin's workers on
        windows whose brief peaks happened not to queue, and plays waited behind browse
        rows at the origin (CRITICAL p99 94 ms against a 2x-unloaded bound of 84)."""
        assert self.settings.busy_gain is not None
        busy = sum(self.baselines.get(kind, 0.0) for kind in kinds) / window_s
        return limit >= self.settings.busy_gain * busy

    def _adjust(self, ratio: float, drops: int, used: int, needed: float, now: float) -> None:
        s = self.settings
        if drops or ratio > s.shrink_above:
            if drops:
                new = self.estimated * s.drop_backoff
            else:
                # Proportional to how far latency is above the band, at most halving.
                new = self.estimated * max(s.max_shrink_step, s.grow_below / ratio)
            self._congested_until = now + s.congestion_memory_s
            self._congested_at = self.estimated
        elif ratio <= s.grow_below and used >= needed:
            # Additive growth of sqrt(limit): fast from small limits, gentle at large ones.
            # For a while after congestion, as in TCP's congestion avoidance, the limit
            # climbs back quickly to just under where congestion was seen, then one at a
            # time: big steps there would overshoot it again and again (a sawtooth whose
            # peaks queue and whose troughs shed).
            step = math.sqrt(self.estimated)
            if now < self._congested_until and self.estimated + step > 0.9 * self._congested_at:
                step = 1.0
            new = self.estimated + max(1.0, step)
        else:
            return  # the dead band, or a limit the traffic does not use: hold
        new = min(max(new, s.min_limit), s.max_limit)
        if math.floor(new) != math.floor(self.estimated):
            self._changed_at = now
        self.estimated = new

    def _probe_delay(self) -> float:
        s = self.settings
        return s.probe_interval_s * (1 + self._rng.uniform(-s.probe_jitter, s.probe_jitter))


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]
