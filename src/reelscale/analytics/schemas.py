"""What the analytics API answers: one snapshot of the live aggregates and their series.

Every series point is one event-time window [start, end). `final` is true once the
watermark has passed the window's end: no event can change it any more. A point that is
not final is provisional (its window is still open, or only partly elapsed).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Point(BaseModel):
    start: datetime
    end: datetime
    final: bool


class ViewersPoint(Point):
    """Concurrent viewers sampled at the window's end."""

    viewers: int


class PlaysPoint(Point):
    plays: int


class PlaysRatePoint(Point):
    """Plays over a 5-minute window, and the same as a rate per minute."""

    plays: int
    per_minute: float


class StartsPoint(Point):
    """Attempts to start playback in one minute, and how many failed.

    attempts = started + refused; failures = refused + sessions with an error before the
    first frame; failure_ratio = failures / attempts (None with no attempts).
    """

    attempts: int
    started: int
    refused: int
    failed_before_first_frame: int
    failures: int
    failure_ratio: float | None
    reasons: dict[str, int]


class RebufferPoint(Point):
    """rebuffer_ratio = rebuffer_ms / (watched_ms + rebuffer_ms), from heartbeats."""

    watched_ms: int
    rebuffer_ms: int
    rebuffer_ratio: float | None
    heartbeats: int
    rebuffer_events: int
    quality_switches: int
    errors: int
    stopped: int


class TitleSessions(BaseModel):
    title_id: str
    sessions: int


class TopTitles(Point):
    titles: list[TitleSessions]


class ServiceCounts(BaseModel):
    """One service's traffic in a window, summed over every process that reported it.

    latency_ms_p50 is the request-weighted mean of the processes' medians (an estimate);
    latency_ms_p99 is the worst process's p99 (percentiles do not add up).
    """

    requests: int
    errors: int
    client_errors: int
    error_ratio: float | None
    requests_per_s: float
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    reports: int


class ServicesPoint(Point):
    services: dict[str, ServiceCounts]


class BrowsePoint(Point):
    impressions: int
    titles_shown: int
    clicks: int
    searches: int
    zero_result_searches: int
    click_through: float | None  # clicks / titles shown


class FamilyHealth(BaseModel):
    """How one family of events (playback, browse, metrics) is being read.

    Counts are since the process started. `late` events were older than the watermark,
    `too_old` older than the retention, `future` further ahead of this process's clock
    than the allowed skew: all three are dropped. `duplicates` were delivered again (at
    least once delivery) and skipped.
    """

    family: str
    watermark: datetime | None
    newest_event: datetime | None
    records: int
    applied: int
    duplicates: int
    malformed: int
    late: int
    too_old: int
    future: int
    overflow: int  # ignored because a window's distinct keys reached their cap
    failed: int  # raised while being applied (a bug): logged and skipped


class Current(BaseModel):
    """The headline numbers: the newest sample of each series."""

    viewers: int
    plays_last_minute: int
    plays_per_minute_5m: float
    start_failure_ratio: float | None
    rebuffer_ratio: float | None
    requests_per_s: float
    error_ratio: float | None


class AnalyticsSnapshot(BaseModel):
    generated_at: datetime
    version: int = Field(description="Grows whenever the aggregates change")
    allowed_lateness_s: float
    retention_s: float
    current: Current
    viewers: list[ViewersPoint]
    plays_per_minute: list[PlaysPoint]
    plays_5m: list[PlaysRatePoint]
    starts: list[StartsPoint]
    rebuffering: list[RebufferPoint]
    top_titles: TopTitles | None
    services: list[ServicesPoint]
    browse: list[BrowsePoint]
    ingest: list[FamilyHealth]
    unknown_types: dict[str, int] = Field(description="Skipped events by stream")
