"""`Analytics`: the live aggregates of one process, fed by functions, read by the API.

    records --ingest--> dedup per shard -> time checks -> watermark -> family.apply
    snapshot()  -> AnalyticsSnapshot (pydantic), the newest values and the recent series
    changes()   -> an async iterator that wakes on every change (throttled) and every ~2 s

Delivery is at least once, so a record whose sequence is not above the last one applied
from its shard is a duplicate and skipped: within a shard sequences grow and records come
in order (functions.py registers with one batch in flight per shard, so this holds).

Time checks, in order: an event more than `max_future_skew_s` ahead of this process's
clock is refused (`future`; a wrong clock must not drag the watermark ahead); one older
than `retention_s` is refused (`too_old`: it would only make windows that are dropped at
once); one older than its family's watermark is `late`. All are counted and dropped.

Everything here runs on the event loop, so nothing needs a lock. Memory is bounded: the
windows kept span the retention plus the lateness, the distinct keys a window holds are
capped (overflow is counted), and `changes()` holds no queue, only a version number, so a
slow reader costs one snapshot at a time however far behind it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, TypedDict

from reelscale.analytics.aggregates import (
    MINUTE,
    SECOND,
    BrowseFamily,
    Family,
    Limits,
    MetricsFamily,
    Outcome,
    PlaybackFamily,
    PlaybackTotals,
    ServiceTotals,
)
from reelscale.analytics.parsing import Malformed, event_ms
from reelscale.analytics.schemas import (
    AnalyticsSnapshot,
    BrowsePoint,
    Current,
    FamilyHealth,
    PlaysPoint,
    PlaysRatePoint,
    RebufferPoint,
    ServiceCounts,
    ServicesPoint,
    StartsPoint,
    TitleSessions,
    TopTitles,
    ViewersPoint,
)
from reelscale.analytics.windows import Hopping, Watermark, Window, WindowResult
from reelscale.core.clock import Clock, SystemClock
from reelscale.core.lifecycle import Service
from reelscale.events.records import Record

log = logging.getLogger("reelscale.analytics")
MAX_UNKNOWN_TYPES = 64  # distinct unknown event types reported; the rest are "(other)"


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    allowed_lateness_s: float = 30.0
    idle_s: float = 20.0  # a shard silent this long no longer holds the watermark back
    warmup_s: float = 10.0  # no watermark this long after the first event (every shard known)
    retention_s: float = 3600.0  # final windows kept (and the longest series served)
    max_future_skew_s: float = 60.0
    heartbeat_interval_s: float = 10.0  # viewers look back 2.5 of these
    max_sessions: int = 500_000  # distinct sessions per window

    def __post_init__(self) -> None:
        if not (
            self.allowed_lateness_s >= 0
            and self.idle_s > 0
            and self.warmup_s >= 0
            and self.retention_s >= 60
            and self.max_future_skew_s >= 0
            and self.heartbeat_interval_s > 0
            and self.max_sessions > 0
        ):
            raise ValueError(f"analytics settings out of range: {self}")


@dataclass(slots=True)
class Health:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    malformed: int = 0
    late: int = 0
    too_old: int = 0
    future: int = 0
    overflow: int = 0
    failed: int = 0


class BatchReport(NamedTuple):
    records: int
    applied: int  # the rest were duplicates, unknown, malformed, late, too old or future


class Analytics(Service):
    name = "analytics"

    def __init__(self, *, clock: Clock | None = None, config: AnalyticsConfig | None = None):
        super().__init__()
        self.clock: Clock = clock or SystemClock()
        self.config = config or AnalyticsConfig()
        c = self.config
        limits = Limits(keep_ms=int(c.retention_s * 1000), max_sessions=c.max_sessions)
        self.playback = PlaybackFamily(
            limits=limits, heartbeat_interval_ms=int(c.heartbeat_interval_s * 1000)
        )
        self.browse = BrowseFamily(limits=limits)
        self.metrics = MetricsFamily(limits=limits)
        self.families: tuple[Family, ...] = (self.playback, self.browse, self.metrics)
        self.watermarks = {
            f.name: Watermark(
                allowed_lateness_ms=int(c.allowed_lateness_s * 1000),
                idle_ms=int(c.idle_s * 1000),
                warmup_ms=int(c.warmup_s * 1000),
            )
            for f in self.families
        }
        self.health = {f.name: Health() for f in self.families}
        self.unknown_types: dict[str, int] = {}
        self._sequences: dict[tuple[str, int], int] = {}  # (stream, shard) -> last applied
        self.version = 0
        self.subscribers = 0
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._closed = False

    # -- feeding -------------------------------------------------------------------------

    def ingest(self, records: Iterable[Record]) -> BatchReport:
        """Apply a batch of records from any stream; never raises for bad events."""
        wall_ms = event_ms(self.clock.now())
        now_ms = int(self.clock.monotonic() * 1000)
        future_ms = wall_ms + int(self.config.max_future_skew_s * 1000)
        expired_ms = wall_ms - int(self.config.retention_s * 1000)
        seen = applied = 0
        for record in records:
            seen += 1
            event = record.event
            family = self._family(event.type)
            if family is None:
                self._unknown(event.type)
                continue
            health = self.health[family.name]
            health.records += 1
            source = (record.stream, record.shard)
            last = self._sequences.get(source)
            if last is not None and record.sequence <= last:
                health.duplicates += 1
                continue
            self._sequences[source] = record.sequence
            t_ms = event_ms(event.time)
            if t_ms > future_ms:
                health.future += 1
                continue
            if t_ms < expired_ms:
                health.too_old += 1
                continue
            watermark = self.watermarks[family.name]
            watermark.observe(source, t_ms, now_ms)
            if watermark.is_late(t_ms):
                health.late += 1
                continue
            try:
                outcome = family.apply(event.type, event.data, event.subject, t_ms)
            except Malformed:
                health.malformed += 1
                continue
            except Exception:
                # A bug, not bad data: counted and logged (the first few), never raised, or the
                # function would retry the batch and stall the shard on one record.
                health.failed += 1
                if health.failed <= 10 or health.failed % 1000 == 0:
                    log.exception(
                        "analytics could not apply an event",
                        extra={"event_type": event.type, "failed": health.failed},
                    )
                continue
            if outcome is Outcome.UNKNOWN:
                health.records -= 1  # not one of this family's events after all
                self._unknown(event.type)
                continue
            watermark.accepted(t_ms)
            if outcome is Outcome.OVERFLOW:
                health.overflow += 1
            else:
                health.applied += 1
                applied += 1
        if seen:
            self._advance(wall_ms, now_ms)
            self.version += 1
            self._notify()
        return BatchReport(seen, applied)

    def _family(self, type: str) -> Family | None:
        for family in self.families:
            if family.accepts(type):
                return family
        return None

    def _unknown(self, type: str) -> None:
        if type not in self.unknown_types and len(self.unknown_types) >= MAX_UNKNOWN_TYPES:
            type = "(other)"
        self.unknown_types[type] = self.unknown_types.get(type, 0) + 1

    def _advance(self, wall_ms: int, now_ms: int) -> None:
        for family in self.families:
            watermark = self.watermarks[family.name]
            before = watermark.value
            after = watermark.advance(now_ms, wall_ms)
            if after is not None and after != before:
                family.close(after)

    # -- live updates --------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changes(self, *, every_s: float = 2.0, min_gap_s: float = 0.5) -> AsyncIterator[int]:
        """Yield the version at once, then on each change (at most every `min_gap_s`) and at
        least every `every_s`; stop when the service stops.

        Nothing is queued per subscriber: a reader that is slow to take the next item just
        skips the versions it missed.
        """
        loop = asyncio.get_running_loop()
        self.subscribers += 1
        try:
            last = self.version
            sent_at = loop.time()
            yield last
            while not self.is_closed():
                if self.version == last:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), every_s)
                gap = min_gap_s - (loop.time() - sent_at)
                if gap > 0 and not self.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), gap)
                if self.is_closed():
                    return
                last = self.version
                sent_at = loop.time()
                yield last
        finally:
            self.subscribers -= 1

    def is_closed(self) -> bool:
        # A method, not an attribute: another task closes it while this one waits.
        return self._closed

    def close(self) -> None:
        """End every `changes()` iterator now (the server is shutting down)."""
        self._closed = True
        self._stopping.set()
        self._notify()

    async def on_start(self) -> None:
        self._closed = False
        self._stopping = asyncio.Event()

    async def on_stop(self) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------

    def snapshot(self, *, minutes: int = 60) -> AnalyticsSnapshot:
        """The newest values and the last `minutes` of every series (as far as they go)."""
        now = self.clock.now()
        self._advance(event_ms(now), int(self.clock.monotonic() * 1000))
        span_ms = min(minutes * MINUTE, int(self.config.retention_s * 1000))
        pb = self.watermarks["playback"]
        playback = self.playback
        viewers_now = 0
        plays_last = 0
        plays_5m = 0.0
        starts_ratio = rebuffer_ratio = None
        top: TopTitles | None = None
        if pb.horizon_ms is not None:
            h = pb.horizon_ms
            viewers_now = playback.viewers.at(h + 1)
            last_minute = playback.minutes.get(
                Window(h // MINUTE * MINUTE - MINUTE, h // MINUTE * MINUTE)
            )
            plays_last = last_minute.result.started
            starts_ratio = last_minute.result.failure_ratio
            rebuffer_ratio = last_minute.result.rebuffer_ratio
            five = playback.plays_5m.windows
            plays_5m = playback.plays_5m.get(five.ending_after(h - MINUTE)).result / 5
            now_top = playback.top_titles_now(h, pb.value)
            top = TopTitles(
                start=_dt(now_top.window.start_ms),
                end=_dt(now_top.window.end_ms),
                final=now_top.final,
                titles=[TitleSessions(title_id=t, sessions=n) for t, n in now_top.result.titles],
            )
        services = self._services(span_ms)
        requests = errors = 0
        mw = self.watermarks["metrics"]
        if mw.horizon_ms is not None:
            end = mw.horizon_ms // MINUTE * MINUTE
            for totals in self.metrics.minutes.get(Window(end - MINUTE, end)).result.values():
                requests += totals.requests
                errors += totals.errors
        return AnalyticsSnapshot(
            generated_at=now,
            version=self.version,
            allowed_lateness_s=self.config.allowed_lateness_s,
            retention_s=self.config.retention_s,
            current=Current(
                viewers=viewers_now,
                plays_last_minute=plays_last,
                plays_per_minute_5m=plays_5m,
                start_failure_ratio=starts_ratio,
                rebuffer_ratio=rebuffer_ratio,
                requests_per_s=requests / 60,
                error_ratio=errors / requests if requests else None,
            ),
            viewers=self._viewers(span_ms),
            plays_per_minute=[
                PlaysPoint(**_bounds(r.window, r.final), plays=r.result.started)
                for r in self._minutes(span_ms)
            ],
            plays_5m=self._plays_5m(span_ms),
            starts=[_starts(r.window, r.final, r.result) for r in self._minutes(span_ms)],
            rebuffering=[_rebuffer(r.window, r.final, r.result) for r in self._minutes(span_ms)],
            top_titles=top,
            services=services,
            browse=self._browse(span_ms),
            ingest=[self._health(f.name) for f in self.families],
            unknown_types=dict(self.unknown_types),
        )

    def _span(self, family: str, windows: Hopping, span_ms: int) -> tuple[int, int] | None:
        """First and last window ends to show: back `span_ms` from the window still filling
        at the horizon (provisional), but never before the family's first event."""
        watermark = self.watermarks[family]
        if watermark.horizon_ms is None or watermark.oldest_ms is None:
            return None
        hop = windows.hop_ms
        last = (watermark.horizon_ms // hop + 1) * hop
        first = max(last - span_ms + hop, (watermark.oldest_ms // hop + 1) * hop)
        return (first, last) if first <= last else None

    def _minutes(self, span_ms: int) -> list[WindowResult[PlaybackTotals]]:
        span = self._span("playback", self.playback.minutes.windows, span_ms)
        if span is None:
            return []
        return self.playback.minutes.series(*span, self.watermarks["playback"].value)

    def _viewers(self, span_ms: int) -> list[ViewersPoint]:
        viewers = self.playback.viewers
        span = self._span("playback", viewers.windows, span_ms)
        if span is None:
            return []
        out = []
        for end in range(span[0], span[1] + 1, viewers.sample_ms):
            value, final = viewers.sample(end)
            window = Window(end - viewers.sample_ms, end)
            out.append(ViewersPoint(**_bounds(window, final), viewers=value))
        return out

    def _plays_5m(self, span_ms: int) -> list[PlaysRatePoint]:
        plays = self.playback.plays_5m
        span = self._span("playback", plays.windows, span_ms)
        if span is None:
            return []
        return [
            PlaysRatePoint(**_bounds(r.window, r.final), plays=r.result, per_minute=r.result / 5)
            for r in plays.series(*span, self.watermarks["playback"].value)
        ]

    def _services(self, span_ms: int) -> list[ServicesPoint]:
        minutes = self.metrics.minutes
        span = self._span("metrics", minutes.windows, span_ms)
        if span is None:
            return []
        return [
            ServicesPoint(
                **_bounds(r.window, r.final),
                services={name: _service(t) for name, t in sorted(r.result.items())},
            )
            for r in minutes.series(*span, self.watermarks["metrics"].value)
        ]

    def _browse(self, span_ms: int) -> list[BrowsePoint]:
        minutes = self.browse.minutes
        span = self._span("browse", minutes.windows, span_ms)
        if span is None:
            return []
        return [
            BrowsePoint(
                **_bounds(r.window, r.final),
                impressions=r.result.impressions,
                titles_shown=r.result.titles_shown,
                clicks=r.result.clicks,
                searches=r.result.searches,
                zero_result_searches=r.result.zero_result_searches,
                click_through=(
                    r.result.clicks / r.result.titles_shown if r.result.titles_shown else None
                ),
            )
            for r in minutes.series(*span, self.watermarks["browse"].value)
        ]

    def _health(self, family: str) -> FamilyHealth:
        watermark = self.watermarks[family]
        counts = self.health[family]
        return FamilyHealth(
            family=family,
            watermark=None if watermark.value is None else _dt(watermark.value),
            newest_event=None if watermark.newest_ms is None else _dt(watermark.newest_ms),
            records=counts.records,
            applied=counts.applied,
            duplicates=counts.duplicates,
            malformed=counts.malformed,
            late=counts.late,
            too_old=counts.too_old,
            future=counts.future,
            overflow=counts.overflow,
            failed=counts.failed,
        )


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class _Bounds(TypedDict):
    start: datetime
    end: datetime
    final: bool


def _bounds(window: Window, final: bool) -> _Bounds:
    return {"start": _dt(window.start_ms), "end": _dt(window.end_ms), "final": final}


def _starts(window: Window, final: bool, m: PlaybackTotals) -> StartsPoint:
    return StartsPoint(
        **_bounds(window, final),
        attempts=m.attempts,
        started=m.started,
        refused=m.refused,
        failed_before_first_frame=m.failed_before_first_frame,
        failures=m.failures,
        failure_ratio=m.failure_ratio,
        reasons=m.reasons,
    )


def _rebuffer(window: Window, final: bool, m: PlaybackTotals) -> RebufferPoint:
    return RebufferPoint(
        **_bounds(window, final),
        watched_ms=m.watched_ms,
        rebuffer_ms=m.rebuffer_ms,
        rebuffer_ratio=m.rebuffer_ratio,
        heartbeats=m.heartbeats,
        rebuffer_events=m.rebuffer_events,
        quality_switches=m.quality_switches,
        errors=m.errors,
        stopped=m.stopped,
    )


def _service(t: ServiceTotals) -> ServiceCounts:
    return ServiceCounts(
        requests=t.requests,
        errors=t.errors,
        client_errors=t.client_errors,
        error_ratio=t.errors / t.requests if t.requests else None,
        requests_per_s=t.requests / (MINUTE / SECOND),
        latency_ms_p50=t.p50,
        latency_ms_p99=t.p99_worst,
        reports=t.reports,
    )
