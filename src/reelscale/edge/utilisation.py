"""Event-loop CPU and lag, and the per-class decision to shed on them.

Latency tells the concurrency limiter about queueing in front of the work; it cannot see a
process whose event loop is starved (every callback late, including the ones that would
measure latency) or whose CPU is spent. So a sampler measures both, periodically, and turns
them into one boolean per class that the request path reads with a list index.

CPU is the event-loop thread's own CPU time per wall second, as a fraction of one core: the
loop runs on one thread, so one core is what it saturates. Not the whole process: worker
threads (password hashing at sign-in, a recommendations build) can keep a core busy while
the loop itself is idle, and shedding requests then would refuse work the loop could do.
Loop lag is how late a timer fires; it is smoothed (an exponentially weighted average that
rises at once and falls gently) so one late tick neither sheds nor hides a sustained stall.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reelscale.core.clock import Clock
from reelscale.edge.priority import Priority


def loop_cpu_seconds() -> float:
    """CPU time of the calling thread so far: sampled on the event loop, the loop's own."""
    return time.thread_time()


@dataclass(frozen=True)
class SheddingThresholds:
    """Shed a class when CPU (fraction of one core) or loop lag (seconds) passes these.

    None never sheds on that signal."""

    cpu: float | None
    loop_lag_s: float | None


# CRITICAL is not shed on utilisation: the concurrency limit alone guards it, so a play
# still starts on a hot but healthy process.
DEFAULT_THRESHOLDS: Mapping[Priority, SheddingThresholds] = {
    Priority.CRITICAL: SheddingThresholds(cpu=None, loop_lag_s=None),
    Priority.DEGRADED: SheddingThresholds(cpu=0.95, loop_lag_s=0.200),
    Priority.BEST_EFFORT: SheddingThresholds(cpu=0.85, loop_lag_s=0.100),
    Priority.BULK: SheddingThresholds(cpu=0.70, loop_lag_s=0.050),
}


class UtilisationMonitor:
    """Samples CPU and loop lag and keeps `shedding[priority]` and `reason[priority]`."""

    def __init__(
        self,
        *,
        clock: Clock,
        thresholds: Mapping[Priority, SheddingThresholds] | None = None,
        cpu_seconds: Callable[[], float] = loop_cpu_seconds,
        interval_s: float = 0.05,
        lag_decay: float = 0.8,
    ) -> None:
        self.clock = clock
        self.thresholds = dict(thresholds or DEFAULT_THRESHOLDS)
        self.cpu_seconds = cpu_seconds
        self.interval_s = interval_s
        self.lag_decay = lag_decay
        self.cpu = 0.0
        self.loop_lag_s = 0.0
        # Indexed by Priority value; read on every request, so a plain list.
        self.shedding: list[bool] = [False] * len(Priority)
        self.reason: list[str] = [""] * len(Priority)
        self._last_cpu: float | None = None
        self._last_wall: float | None = None

    def sample(self, *, lag_s: float) -> None:
        """Take one sample now: `lag_s` is how late the sampling timer fired."""
        now = self.clock.monotonic()
        cpu_now = self.cpu_seconds()
        if self._last_cpu is not None and self._last_wall is not None:
            wall = now - self._last_wall
            if wall > 0:
                self.cpu = max(0.0, (cpu_now - self._last_cpu) / wall)
        self._last_cpu, self._last_wall = cpu_now, now
        lag_s = max(0.0, lag_s)
        # Rise at once, fall gently: a stall is acted on now, recovery is trusted slowly.
        self.loop_lag_s = max(lag_s, self.loop_lag_s * self.lag_decay)
        self._decide()

    def _decide(self) -> None:
        for priority in Priority:
            limits = self.thresholds.get(priority)
            reason = ""
            if limits is not None:
                if limits.loop_lag_s is not None and self.loop_lag_s > limits.loop_lag_s:
                    reason = "loop_lag"
                elif limits.cpu is not None and self.cpu > limits.cpu:
                    reason = "cpu"
            self.shedding[priority] = bool(reason)
            self.reason[priority] = reason

    async def run(self) -> None:
        """Sample forever; the lateness of each wake-up is the loop lag."""
        while True:
            expected = self.clock.monotonic() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.sample(lag_s=self.clock.monotonic() - expected)
