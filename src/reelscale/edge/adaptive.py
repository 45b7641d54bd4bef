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
"""

from __future__ import annotations

import math
import random
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
        self.baseline_s: float | None = None
        self.last_window_rtt_s: float | None = None
        # The first window is a probe: a baseline measured at the full initial limit could
        # already include queueing, and would then be trusted until the next probe.
        self.probing = True
        self.windows = 0
        self.probes = 0
        self._samples: list[float] = []
        self._drops = 0
        self._max_in_flight = 0
        self._window_start: float | None = None
        self._next_probe: float | None = None

    @property
    def limit(self) -> int:
        """Permits available now: the estimate, or its probe fraction while probing."""
        s = self.settings
        value = self.estimated * s.probe_fraction if self.probing else self.estimated
        return max(int(s.min_limit), math.floor(value))

    def observe(self, *, rtt_s: float, in_flight: int, now: float) -> None:
        """Record one completed request; closes the window when it is due."""
        if self._window_start is None:
            self._window_start = now
        if self.probing and now - rtt_s < self._window_start:
            # Admitted before the probe lowered the limit: it waited in the old queue, so
            # it says nothing about the floor. Counting it would keep a stale baseline.
            return
        self._samples.append(rtt_s)
        if in_flight > self._max_in_flight:
            self._max_in_flight = in_flight
        self._maybe_close(now)

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
        samples, drops, used = self._samples, self._drops, self._max_in_flight
        limit_in_window = self.limit
        self._samples, self._drops, self._max_in_flight = [], 0, 0
        self._window_start = now
        self.windows += 1
        if self._next_probe is None:
            self._next_probe = now + self._probe_delay()
        window_rtt = _percentile(samples, s.percentile) if samples else None
        self.last_window_rtt_s = window_rtt

        if self.probing:
            # The probe window ran at a fraction of the limit, so its queue had drained:
            # its latency is the best evidence of the no-load floor, and may raise it.
            self.probing = False
            self._next_probe = now + self._probe_delay()
            if window_rtt is not None and not drops:
                previous, self.baseline_s = self.baseline_s, window_rtt
                if previous is not None and window_rtt * s.grow_below < previous:
                    # Far below the old floor: that floor held queueing, and this one may
                    # too. Probe again after one normal window instead of in half a minute.
                    self._next_probe = now
            return
        if window_rtt is None:
            self.estimated = max(s.min_limit, self.estimated * s.drop_backoff)
            return
        if self.baseline_s is None or window_rtt < self.baseline_s:
            # Only a whole window's percentile can lower the floor, never one sample.
            self.baseline_s = window_rtt
        if now >= self._next_probe:
            self.probing = True
            self.probes += 1
        self._adjust(window_rtt, drops, used, limit_in_window)

    def _adjust(self, window_rtt: float, drops: int, used: int, limit_in_window: int) -> None:
        s = self.settings
        assert self.baseline_s is not None
        ratio = window_rtt / self.baseline_s if self.baseline_s > 0 else 1.0
        if drops:
            new = self.estimated * s.drop_backoff
        elif ratio > s.shrink_above:
            # Proportional to how far latency is above the tolerated band, at most halving.
            gradient = max(s.max_shrink_step, s.grow_below / ratio)
            new = self.estimated * gradient
        elif ratio <= s.grow_below and used >= s.utilised_fraction * limit_in_window:
            # Additive growth of sqrt(limit): fast from small limits, gentle at large ones.
            new = self.estimated + max(1.0, math.sqrt(self.estimated))
        else:
            return  # the dead band, or a limit the traffic does not use: hold
        self.estimated = min(max(new, s.min_limit), s.max_limit)

    def _probe_delay(self) -> float:
        s = self.settings
        return s.probe_interval_s * (1 + self._rng.uniform(-s.probe_jitter, s.probe_jitter))


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]
