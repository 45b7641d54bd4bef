"""Function instances, to tell cold starts from warm ones.

An instance is what Lambda calls an execution environment: the slot an invocation runs
in. Handlers here are plain coroutines with no set-up of their own, so an instance holds
nothing but its history, which is exactly what the cold/warm metric needs:

- cold: the invocation got a new instance, because none was idle: the first invocation
  after the runtime started, one that needs more instances than have run at once so far
  (concurrency grew), one after every idle instance was retired (idle for longer than
  `idle_s`), or one after the instance it would have reused was discarded because its
  invocation timed out (a timed-out instance is not trusted again, as in Lambda).
- warm: it reused an idle instance. A handler that raises does not lose its instance.
"""

from __future__ import annotations

import itertools

from reelscale.core.clock import Clock

DEFAULT_IDLE_S = 300.0


class InstancePool:
    def __init__(self, clock: Clock, *, idle_s: float = DEFAULT_IDLE_S) -> None:
        self.clock = clock
        self.idle_s = idle_s
        self._ids = itertools.count(1)
        self._idle: list[tuple[int, float]] = []  # (instance, last used), most recent last

    def acquire(self) -> tuple[int, bool]:
        """An instance for one invocation, and whether it is a cold start."""
        now = self.clock.monotonic()
        self._idle = [(i, used) for i, used in self._idle if now - used <= self.idle_s]
        if self._idle:
            instance, _ = self._idle.pop()
            return instance, False
        return next(self._ids), True

    def release(self, instance: int) -> None:
        """Return an instance after a normal invocation (success or a raised error)."""
        self._idle.append((instance, self.clock.monotonic()))

    def discard(self, instance: int) -> None:
        """Drop an instance whose invocation timed out: the next one starts cold."""

    @property
    def idle(self) -> int:
        return len(self._idle)
