"""A function's concurrency limit, with throttles counted like Lambda's.

Every invocation of a function, from any shard or lane, takes a slot. With a limit, an
invocation that finds every slot taken is counted once as throttled and waits for one;
records are never dropped for it, they only wait (the shard falls behind instead).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable


class ConcurrencyLimit:
    def __init__(self, limit: int | None, *, on_throttle: Callable[[], None]) -> None:
        self.limit = limit
        self._on_throttle = on_throttle
        self._slots = asyncio.Semaphore(limit) if limit is not None else None
        self.running = 0
        self.peak = 0  # the most invocations that have run at once

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots is not None:
            if self._slots.locked():
                self._on_throttle()
            await self._slots.acquire()
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            self.running -= 1
            if self._slots is not None:
                self._slots.release()
