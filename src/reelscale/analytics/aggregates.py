"""The metric definitions: what each event adds to which window, and what a window reports.

Three families of events, each with its own watermark (see `service`):

    playback   concurrent viewers (10 s samples), plays per minute, plays over 5 minutes
               hopping every minute, start failures, rebuffer ratio, top titles now
               (distinct sessions over 5 minutes hopping every 30 s)
    browse     impressions, clicks and searches per minute
    metrics    requests, errors and latency per service per minute (from service.metrics)

`apply(type, data, subject, t_ms)` validates the whole event first and only then changes
any state, so a malformed event (`parsing.Malformed`) leaves no trace but its count.
docs/analytics.md states every definition in words.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, NamedTuple

from reelscale.analytics import parsing
from reelscale.analytics.parsing import Malformed
from reelscale.analytics.windows import Hopping, Tumbling, Window, Windowed, WindowResult

SECOND = 1000
MINUTE = 60 * SECOND

MAX_REASONS = 32  # distinct refusal reasons kept per minute; the rest count as "other"
MAX_SERVICES = 256  # distinct services per minute
MAX_SESSIONS = 500_000  # distinct sessions per window (viewers, top titles)


class Outcome(Enum):
    APPLIED = "applied"
    UNKNOWN = "unknown"  # a type this family does not define: skipped
    OVERFLOW = "overflow"  # valid, but a window's distinct keys reached their cap


@dataclass(frozen=True, slots=True)
class Limits:
    keep_ms: int  # how long final windows are kept (the longest series served)
    max_sessions: int = MAX_SESSIONS


class Family(ABC):
    """A family of events sharing a watermark, and the aggregates they feed."""

    name: str
    prefixes: tuple[str, ...]

    @abstractmethod
    def apply(self, type: str, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        """Add one on-time event (raises `Malformed` before changing anything)."""

    @abstractmethod
    def close(self, watermark_ms: int) -> None:
        """Finish the windows the watermark has passed and forget expired ones."""

    def accepts(self, type: str) -> bool:
        return type.startswith(self.prefixes)


# ---------------------------------------------------------------- playback


@dataclass(slots=True)
class PlaybackMinute:
    """One minute of playback, while the window is open."""

    started: int = 0
    refused: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    failed_sessions: set[str] = field(default_factory=set)  # errors before the first frame
    errors: int = 0
    watched_ms: int = 0
    rebuffer_ms: int = 0
    heartbeats: int = 0
    rebuffer_events: int = 0
    quality_switches: int = 0
    stopped: int = 0


class PlaybackTotals(NamedTuple):
    """One minute of playback, frozen."""

    started: int
    refused: int
    reasons: dict[str, int]
    failed_before_first_frame: int
    errors: int
    watched_ms: int
    rebuffer_ms: int
    heartbeats: int
    rebuffer_events: int
    quality_switches: int
    stopped: int

    @property
    def attempts(self) -> int:
        return self.started + self.refused

    @property
    def failures(self) -> int:
        return self.refused + self.failed_before_first_frame

    @property
    def failure_ratio(self) -> float | None:
        return self.failures / self.attempts if self.attempts else None

    @property
    def rebuffer_ratio(self) -> float | None:
        played = self.watched_ms + self.rebuffer_ms
        return self.rebuffer_ms / played if played else None


def _freeze_minute(m: PlaybackMinute) -> PlaybackTotals:
    reasons = dict(m.reasons)
    if m.failed_sessions:
        reasons["before_first_frame"] = len(m.failed_sessions)
    return PlaybackTotals(
        started=m.started,
        refused=m.refused,
        reasons=reasons,
        failed_before_first_frame=len(m.failed_sessions),
        errors=m.errors,
        watched_ms=m.watched_ms,
        rebuffer_ms=m.rebuffer_ms,
        heartbeats=m.heartbeats,
        rebuffer_events=m.rebuffer_events,
        quality_switches=m.quality_switches,
        stopped=m.stopped,
    )


@dataclass(slots=True)
class Tally:
    n: int = 0


def _tally(t: Tally) -> int:
    return t.n


@dataclass(slots=True)
class TitleWindow:
    """Distinct sessions per title within one window."""

    sessions: dict[str, set[str]] = field(default_factory=dict)
    size: int = 0  # sessions over all titles, for the cap


class TopTitlesResult(NamedTuple):
    titles: list[tuple[str, int]]  # (title id, distinct sessions), most first


def top_titles(window: TitleWindow, n: int = 10) -> TopTitlesResult:
    """The n titles with the most distinct sessions; ties by title id, for a stable order."""
    best = heapq.nsmallest(n, window.sessions.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return TopTitlesResult([(title, len(sessions)) for title, sessions in best])


class ConcurrentViewers:
    """Sessions with a start or heartbeat within the lookback and no stop, sampled per window.

    The sample at time e counts the sessions whose latest start/heartbeat before e is at or
    after e - lookback, less those stopped before e. Activity is kept per sample window
    (each session's latest time in it), so a sample needs only the windows the lookback
    reaches; once the watermark passes e the sample is final and kept as a number.
    """

    def __init__(self, *, sample_ms: int, lookback_ms: int, limits: Limits) -> None:
        self.windows = Tumbling(sample_ms)
        self.sample_ms = sample_ms
        self.lookback_ms = lookback_ms
        self.limits = limits
        self._activity: dict[int, dict[str, int]] = {}  # window start -> session -> latest ms
        self._stopped: dict[str, int] = {}  # session -> when it stopped
        self._samples: dict[int, int] = {}  # sample time (a window end) -> viewers, final
        self._final_until: int | None = None  # every sample at or before this is final

    def active(self, session: str, t_ms: int) -> Outcome:
        start = t_ms // self.sample_ms * self.sample_ms
        sessions = self._activity.setdefault(start, {})
        if session not in sessions and len(sessions) >= self.limits.max_sessions:
            return Outcome.OVERFLOW
        if t_ms > sessions.get(session, t_ms - 1):
            sessions[session] = t_ms
        return Outcome.APPLIED

    def stop(self, session: str, t_ms: int) -> Outcome:
        if session not in self._stopped and len(self._stopped) >= self.limits.max_sessions:
            return Outcome.OVERFLOW
        self._stopped[session] = min(t_ms, self._stopped.get(session, t_ms))
        return Outcome.APPLIED

    def at(self, e_ms: int) -> int:
        """Viewers at time e (counting activity strictly before e)."""
        since = e_ms - self.lookback_ms
        seen: set[str] = set()
        first = since // self.sample_ms * self.sample_ms
        for start in range(first, e_ms, self.sample_ms):
            for session, t in self._activity.get(start, {}).items():
                if since <= t < e_ms:
                    seen.add(session)
        stopped = self._stopped
        return sum(1 for s in seen if stopped.get(s, e_ms) >= e_ms)

    def close(self, watermark_ms: int) -> None:
        last = watermark_ms // self.sample_ms * self.sample_ms
        first = last - self.limits.keep_ms
        if self._final_until is not None:
            first = max(first, self._final_until + self.sample_ms)
        for e in range(first, last + 1, self.sample_ms):
            self._samples[e] = self.at(e)
        self._final_until = last if self._final_until is None else max(self._final_until, last)
        reach = self.sample_ms + self.lookback_ms  # a window matters to samples this far on
        for start in [s for s in self._activity if s + reach <= self._final_until]:
            del self._activity[start]
        # A stop is kept a while after the watermark, so a straggling heartbeat of a stopped
        # session does not bring it back.
        for session in [s for s, t in self._stopped.items() if t + 2 * reach <= watermark_ms]:
            del self._stopped[session]
        for e in [e for e in self._samples if e <= watermark_ms - self.limits.keep_ms]:
            del self._samples[e]

    def sample(self, e_ms: int) -> tuple[int, bool]:
        """The sample at e and whether it is final."""
        final = self._samples.get(e_ms)
        if final is not None:
            return final, True
        if self._final_until is not None and e_ms <= self._final_until:
            return 0, True  # before the first event, or expired: nobody
        return self.at(e_ms), False


Handler = Callable[["PlaybackFamily", Mapping[str, Any], str | None, int], Outcome]


class PlaybackFamily(Family):
    name = "playback"
    prefixes = ("playback.",)

    def __init__(self, *, limits: Limits, heartbeat_interval_ms: int = 10 * SECOND) -> None:
        self.limits = limits
        keep = limits.keep_ms
        self.minutes: Windowed[PlaybackMinute, PlaybackTotals] = Windowed(
            Tumbling(MINUTE), new=PlaybackMinute, finish=_freeze_minute, keep_ms=keep
        )
        self.plays_5m: Windowed[Tally, int] = Windowed(
            Hopping(5 * MINUTE, MINUTE), new=Tally, finish=_tally, keep_ms=keep
        )
        self.titles: Windowed[TitleWindow, TopTitlesResult] = Windowed(
            Hopping(5 * MINUTE, 30 * SECOND), new=TitleWindow, finish=top_titles, keep_ms=keep
        )
        self.viewers = ConcurrentViewers(
            sample_ms=10 * SECOND,
            lookback_ms=heartbeat_interval_ms * 5 // 2,  # 2.5 heartbeat intervals
            limits=limits,
        )

    def apply(self, type: str, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        handler = self._handlers.get(type)
        if handler is None:
            return Outcome.UNKNOWN
        return handler(self, data, subject, t_ms)

    def _started(self, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        session = parsing.ident(data, "session_id")
        title = parsing.ident(data, "title_id", subject)
        (minute,) = self.minutes.states(t_ms)
        minute.started += 1
        for plays in self.plays_5m.states(t_ms):
            plays.n += 1
        return self._activity(session, title, t_ms)

    def _start_failed(self, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        reason = parsing.slug(data, "reason")
        (minute,) = self.minutes.states(t_ms)
        minute.refused += 1
        if reason not in minute.reasons and len(minute.reasons) >= MAX_REASONS:
            reason = "other"
        minute.reasons[reason] = minute.reasons.get(reason, 0) + 1
        return Outcome.APPLIED

    def _heartbeat(self, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        session = parsing.ident(data, "session_id")
        title = parsing.ident(data, "title_id", subject)
        watched = parsing.count(data, "watched_ms", most=parsing.MAX_INTERVAL_MS, default=0)
        stalled = parsing.count(data, "rebuffer_ms", most=parsing.MAX_INTERVAL_MS, default=0)
        (minute,) = self.minutes.states(t_ms)
        minute.heartbeats += 1
        minute.watched_ms += watched
        minute.rebuffer_ms += stalled
        return self._activity(session, title, t_ms)

    def _activity(self, session: str, title: str, t_ms: int) -> Outcome:
        outcome = self.viewers.active(session, t_ms)
        for window in self.titles.states(t_ms):
            sessions = window.sessions.get(title)
            if sessions is None:
                sessions = window.sessions[title] = set()
            if session not in sessions:
                if window.size >= self.limits.max_sessions:
                    outcome = Outcome.OVERFLOW
                    continue
                sessions.add(session)
                window.size += 1
        return outcome

    def _quality_switched(self, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        parsing.ident(data, "session_id")
        (minute,) = self.minutes.states(t_ms)
        minute.quality_switches += 1
        return Outcome.APPLIED

    def _rebuffered(self, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        parsing.ident(data, "session_id")
        parsing.count(data, "duration_ms", most=parsing.MAX_INTERVAL_MS)
        (minute,) = self.minutes.states(t_ms)
        minute.rebuffer_events += 1
        return Outcome.APPLIED

    def _error(self, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        session = parsing.ident(data, "session_id")
        before_first_frame = parsing.flag(data, "before_first_frame")
        parsing.flag(data, "fatal")
        (minute,) = self.minutes.states(t_ms)
        minute.errors += 1
        if before_first_frame:
            if len(minute.failed_sessions) >= self.limits.max_sessions:
                return Outcome.OVERFLOW
            minute.failed_sessions.add(session)
        return Outcome.APPLIED

    def _stopped(self, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        session = parsing.ident(data, "session_id")
        (minute,) = self.minutes.states(t_ms)
        minute.stopped += 1
        return self.viewers.stop(session, t_ms)

    _handlers: ClassVar[dict[str, Handler]] = {
        "playback.started": _started,
        "playback.start_failed": _start_failed,
        "playback.heartbeat": _heartbeat,
        "playback.quality_switched": _quality_switched,
        "playback.rebuffered": _rebuffered,
        "playback.error": _error,
        "playback.stopped": _stopped,
    }

    def close(self, watermark_ms: int) -> None:
        self.minutes.close(watermark_ms)
        self.plays_5m.close(watermark_ms)
        self.titles.close(watermark_ms)
        self.viewers.close(watermark_ms)

    def top_titles_now(
        self, horizon_ms: int, watermark_ms: int | None
    ) -> WindowResult[TopTitlesResult]:
        """The 5-minute window ending at the first 30 s boundary after the horizon."""
        window = self.titles.windows.ending_after(horizon_ms)
        result = self.titles.get(window)
        if not result.final and watermark_ms is not None and window.end_ms <= watermark_ms:
            result = result._replace(final=True)
        return result


# ---------------------------------------------------------------- browse


@dataclass(slots=True)
class BrowseMinute:
    impressions: int = 0
    titles_shown: int = 0
    clicks: int = 0
    searches: int = 0
    zero_result_searches: int = 0


def _freeze_browse(m: BrowseMinute) -> BrowseMinute:
    return BrowseMinute(m.impressions, m.titles_shown, m.clicks, m.searches, m.zero_result_searches)


class BrowseFamily(Family):
    name = "browse"
    prefixes = ("browse.",)

    def __init__(self, *, limits: Limits) -> None:
        self.minutes: Windowed[BrowseMinute, BrowseMinute] = Windowed(
            Tumbling(MINUTE), new=BrowseMinute, finish=_freeze_browse, keep_ms=limits.keep_ms
        )

    def apply(self, type: str, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        if type == "browse.impression":
            shown = len(parsing.id_list(data, "title_ids"))
            (minute,) = self.minutes.states(t_ms)
            minute.impressions += 1
            minute.titles_shown += shown
        elif type == "browse.click":
            parsing.ident(data, "title_id")
            (minute,) = self.minutes.states(t_ms)
            minute.clicks += 1
        elif type == "browse.search":
            results = parsing.count(data, "results", most=1_000_000)
            (minute,) = self.minutes.states(t_ms)
            minute.searches += 1
            if results == 0:
                minute.zero_result_searches += 1
        else:
            return Outcome.UNKNOWN
        return Outcome.APPLIED

    def close(self, watermark_ms: int) -> None:
        self.minutes.close(watermark_ms)


# ---------------------------------------------------------------- service metrics


@dataclass(slots=True)
class ServiceTotals:
    """One service in one window, summed over the processes that reported it."""

    requests: int = 0
    errors: int = 0
    client_errors: int = 0
    p50_weighted: float = 0.0  # sum of p50 x requests, for the request-weighted mean
    p50_weight: int = 0
    p99_worst: float | None = None
    reports: int = 0

    @property
    def p50(self) -> float | None:
        return self.p50_weighted / self.p50_weight if self.p50_weight else None


class _ServiceReport(NamedTuple):
    name: str
    requests: int
    errors: int
    client_errors: int
    p50: float | None
    p99: float | None


def _freeze_services(services: dict[str, ServiceTotals]) -> dict[str, ServiceTotals]:
    return {
        name: ServiceTotals(
            t.requests,
            t.errors,
            t.client_errors,
            t.p50_weighted,
            t.p50_weight,
            t.p99_worst,
            t.reports,
        )
        for name, t in services.items()
    }


class MetricsFamily(Family):
    name = "metrics"
    prefixes = ("service.metrics",)

    def __init__(self, *, limits: Limits) -> None:
        self.minutes: Windowed[dict[str, ServiceTotals], dict[str, ServiceTotals]] = Windowed(
            Tumbling(MINUTE), new=dict, finish=_freeze_services, keep_ms=limits.keep_ms
        )

    def apply(self, type: str, data: Mapping[str, Any], subject: str | None, t_ms: int) -> Outcome:
        if type != "service.metrics":
            return Outcome.UNKNOWN
        reports = [self._report(name, body) for name, body in self._services(data).items()]
        # Counts are deltas over the process's interval: they belong to the window holding the
        # report's time (the interval's end).
        (minute,) = self.minutes.states(t_ms)
        outcome = Outcome.APPLIED
        for r in reports:
            totals = minute.get(r.name)
            if totals is None:
                if len(minute) >= MAX_SERVICES:
                    outcome = Outcome.OVERFLOW
                    continue
                totals = minute[r.name] = ServiceTotals()
            totals.requests += r.requests
            totals.errors += r.errors
            totals.client_errors += r.client_errors
            totals.reports += 1
            if r.p50 is not None and r.requests:
                totals.p50_weighted += r.p50 * r.requests
                totals.p50_weight += r.requests
            if r.p99 is not None and (totals.p99_worst is None or r.p99 > totals.p99_worst):
                totals.p99_worst = r.p99
        return outcome

    @staticmethod
    def _services(data: Mapping[str, Any]) -> Mapping[str, Any]:
        return parsing.mapping(data, "services", most=MAX_SERVICES)

    @staticmethod
    def _report(name: object, body: object) -> _ServiceReport:
        service = parsing.service_name(name)
        if not isinstance(body, dict):
            raise Malformed(f"service {service}: not an object")
        most = parsing.MAX_REQUESTS
        return _ServiceReport(
            name=service,
            requests=parsing.count(body, "requests", most=most),
            errors=parsing.count(body, "errors", most=most),
            client_errors=parsing.count(body, "client_errors", most=most, default=0),
            p50=parsing.latency(body, "latency_ms_p50"),
            p99=parsing.latency(body, "latency_ms_p99"),
        )

    def close(self, watermark_ms: int) -> None:
        self.minutes.close(watermark_ms)


__all__ = [
    "MINUTE",
    "SECOND",
    "BrowseFamily",
    "BrowseMinute",
    "ConcurrentViewers",
    "Family",
    "Limits",
    "MetricsFamily",
    "Outcome",
    "PlaybackFamily",
    "PlaybackTotals",
    "ServiceTotals",
    "TopTitlesResult",
    "Window",
    "WindowResult",
]
