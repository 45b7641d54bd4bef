"""Event-time windows: assigners, a watermark over many sources, and per-window state.

    Tumbling(60 s)          [0,60) [60,120) [120,180) ...   every event in exactly one window
    Hopping(300 s, 60 s)    [0,300) [60,360) [120,420) ...  every event in size/hop windows

Times are integer milliseconds since the epoch, so window bounds are exact (no float
drift when a window is 30 s or 10 s wide) and windows align to the epoch: every process
cuts the same windows.

The watermark says "no more events older than this will be accepted". `Watermark` keeps the
newest event time seen from each source (a stream's shard) and holds the watermark
`allowed lateness` behind the *slowest* active source, so a shard whose consumer is behind
does not see its events declared late because another shard is ahead. A source that has
delivered nothing for `idle` (processing time) stops holding the watermark back; if every
source is idle, the watermark follows the wall clock. The watermark never moves back.
It stays unset for a `warmup` after the first event, so that when a process starts (or
catches up on a backlog) every shard has delivered its first batch, and is known, before
the shard that happened to answer first can declare the others' events late.

`Windowed` keeps the state of each window that is still open and turns it into a result
once the watermark passes the window's end (the window is then final and, since no event
older than the watermark is accepted, can never change). Final results are kept for
`keep`, then dropped, so memory is bounded by (keep + lateness) / hop windows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

S = TypeVar("S")  # a window's mutable state while it is open
R = TypeVar("R")  # a window's result once it is final


class Window(NamedTuple):
    """A half-open interval [start_ms, end_ms) of event time."""

    start_ms: int
    end_ms: int

    def __contains__(self, t_ms: object) -> bool:
        return isinstance(t_ms, int) and self.start_ms <= t_ms < self.end_ms


@dataclass(frozen=True)
class Hopping:
    """Windows of `size_ms` starting every `hop_ms` (aligned to the epoch)."""

    size_ms: int
    hop_ms: int

    def __post_init__(self) -> None:
        if self.hop_ms <= 0 or self.size_ms <= 0:
            raise ValueError("window size and hop must be positive")
        if self.size_ms % self.hop_ms:
            # Then every window is exactly size/hop hops: series line up with their hops.
            raise ValueError("a hopping window's size must be a whole number of hops")

    def starts(self, t_ms: int) -> range:
        """The starts of every window containing `t_ms`, oldest first."""
        last = t_ms // self.hop_ms * self.hop_ms
        return range(last - self.size_ms + self.hop_ms, last + 1, self.hop_ms)

    def assign(self, t_ms: int) -> list[Window]:
        """Every window containing `t_ms`, oldest first."""
        return [Window(s, s + self.size_ms) for s in self.starts(t_ms)]

    def ending_after(self, t_ms: int) -> Window:
        """The window ending at the first hop boundary after `t_ms`: the latest full window
        that contains `t_ms` ("the last five minutes", as of `t_ms`)."""
        end = t_ms // self.hop_ms * self.hop_ms + self.hop_ms
        return Window(end - self.size_ms, end)

    def ends(self, first_end_ms: int, last_end_ms: int) -> Iterator[Window]:
        """Windows ending at hop boundaries from `first_end_ms` to `last_end_ms` inclusive."""
        start = -(-first_end_ms // self.hop_ms) * self.hop_ms  # the boundary at or after
        for end in range(start, last_end_ms + 1, self.hop_ms):
            yield Window(end - self.size_ms, end)


@dataclass(frozen=True, init=False)
class Tumbling(Hopping):
    """Back-to-back windows of `size_ms`: a hopping window whose hop is its size."""

    def __init__(self, size_ms: int) -> None:
        super().__init__(size_ms, size_ms)


class Watermark:
    """The event time before which events are late, over many sources.

    `observe` a source's event times as they arrive; `advance` recomputes the watermark
    from the sources' newest times (see the module docstring).
    """

    def __init__(self, *, allowed_lateness_ms: int, idle_ms: int, warmup_ms: int = 0) -> None:
        if allowed_lateness_ms < 0 or idle_ms <= 0 or warmup_ms < 0:
            raise ValueError("lateness and warm-up must be >= 0 and idle time > 0")
        self.allowed_lateness_ms = allowed_lateness_ms
        self.idle_ms = idle_ms
        self.warmup_ms = warmup_ms
        self._first_seen: int | None = None  # processing time of the first event
        self.value: int | None = None  # None until the first event
        self.newest_ms: int | None = None  # the newest event time seen from any source
        self.oldest_ms: int | None = None  # the oldest accepted event time (series start)
        self._newest: dict[Hashable, int] = {}
        self._last_seen: dict[Hashable, int] = {}  # processing time, ms

    def is_late(self, t_ms: int) -> bool:
        return self.value is not None and t_ms < self.value

    def observe(self, source: Hashable, t_ms: int, now_ms: int) -> None:
        """Record an event time from `source`, at processing time `now_ms`."""
        if t_ms > self._newest.get(source, t_ms - 1):
            self._newest[source] = t_ms
        self._last_seen[source] = now_ms
        if self._first_seen is None:
            self._first_seen = now_ms
        if self.newest_ms is None or t_ms > self.newest_ms:
            self.newest_ms = t_ms

    def accepted(self, t_ms: int) -> None:
        """Note an event that was not late, for where the series begins."""
        if self.oldest_ms is None or t_ms < self.oldest_ms:
            self.oldest_ms = t_ms

    def advance(self, now_ms: int, wall_ms: int) -> int | None:
        """Recompute the watermark at processing time `now_ms` (wall clock `wall_ms`)."""
        if self._first_seen is None or now_ms - self._first_seen < self.warmup_ms:
            return self.value
        active = [
            newest
            for source, newest in self._newest.items()
            if now_ms - self._last_seen[source] < self.idle_ms
        ]
        if active:
            candidate = min(active) - self.allowed_lateness_ms
        elif self._newest:
            # Nothing is arriving: time still passes, so windows close on the wall clock.
            candidate = wall_ms - self.allowed_lateness_ms
        else:
            return self.value
        if self.value is None or candidate > self.value:
            self.value = candidate
        # Sources idle for long are forgotten, so resharding does not grow this forever.
        for source in [
            s for s, seen in self._last_seen.items() if now_ms - seen > 60 * self.idle_ms
        ]:
            del self._last_seen[source]
            del self._newest[source]
        return self.value

    @property
    def horizon_ms(self) -> int | None:
        """How far event time has got: the newest event, or the watermark if it is ahead."""
        if self.newest_ms is None:
            return self.value
        if self.value is None:
            return self.newest_ms
        return max(self.newest_ms, self.value)


class WindowResult(NamedTuple, Generic[R]):
    window: Window
    result: R
    final: bool


class Windowed(Generic[S, R]):
    """Per-window state for one assigner; results once the watermark passes a window."""

    def __init__(
        self,
        windows: Hopping,
        *,
        new: Callable[[], S],
        finish: Callable[[S], R],
        keep_ms: int,
    ) -> None:
        self.windows = windows
        self.new = new
        self.finish = finish
        self.keep_ms = keep_ms
        self._open: dict[int, S] = {}  # by window start
        self._final: dict[int, R] = {}  # by window start, inserted in start order

    def states(self, t_ms: int) -> list[S]:
        """The open states an event at `t_ms` updates (created on first use).

        The caller has already refused late events, so none of these windows is final.
        """
        out: list[S] = []
        opened = self._open
        for start in self.windows.starts(t_ms):  # ints, not Windows: this is the hot path
            state = opened.get(start)
            if state is None:
                state = opened[start] = self.new()
            out.append(state)
        return out

    def close(self, watermark_ms: int) -> None:
        """Finish every open window that ends at or before the watermark; forget old ones."""
        size = self.windows.size_ms
        for start in sorted(s for s in self._open if s + size <= watermark_ms):
            self._final[start] = self.finish(self._open.pop(start))
        horizon = watermark_ms - self.keep_ms
        for start in [s for s in self._final if s + size <= horizon]:
            del self._final[start]

    def get(self, window: Window) -> WindowResult[R]:
        """A window's result: final if closed, provisional if open, empty if never used."""
        final = self._final.get(window.start_ms)
        if final is not None:
            return WindowResult(window, final, True)
        state = self._open.get(window.start_ms)
        return WindowResult(window, self.finish(self.new() if state is None else state), False)

    def series(
        self, first_end_ms: int, last_end_ms: int, watermark_ms: int | None
    ) -> list[WindowResult[R]]:
        """Windows ending from `first_end_ms` to `last_end_ms`, gaps filled with empty ones.

        A window nobody wrote to is final once the watermark has passed it: it is empty.
        """
        out: list[WindowResult[R]] = []
        for window in self.windows.ends(first_end_ms, last_end_ms):
            result = self.get(window)
            if not result.final and watermark_ms is not None and window.end_ms <= watermark_ms:
                result = result._replace(final=True)
            out.append(result)
        return out

    @property
    def open_windows(self) -> int:
        return len(self._open)

    @property
    def final_windows(self) -> int:
        return len(self._final)
