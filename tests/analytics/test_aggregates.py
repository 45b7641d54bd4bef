"""Each metric's definition (docs/analytics.md) checked on small, hand-worked streams."""

from __future__ import annotations

import pytest

from tests.analytics.support import (
    at,
    heartbeat,
    make_feed,
    service_report,
    started,
    stopped,
)


def _series(points: list, field: str) -> list[tuple[int, object, bool]]:  # type: ignore[type-arg]
    """(seconds after T0 of the window's end, value, final) for each point."""
    return [(int((p.end - at(0)).total_seconds()), getattr(p, field), p.final) for p in points]


def test_plays_per_minute_tumbling_and_over_five_minutes_hopping() -> None:
    feed = make_feed(now_s=600)
    for t in (5, 30, 59.9, 61, 250, 400):
        feed.event("playback.started", started(f"s{t}"), t=t)
    snap = feed.analytics.snapshot()
    # Watermark = 400 - 30 (lateness): every window ending at or before 370 s is final.
    assert _series(snap.plays_per_minute, "plays") == [
        (60, 3, True), (120, 1, True), (180, 0, True), (240, 0, True), (300, 1, True),
        (360, 0, True), (420, 1, False),
    ]  # fmt: skip
    assert _series(snap.plays_5m, "plays") == [
        (60, 3, True), (120, 4, True), (180, 4, True), (240, 4, True), (300, 5, True),
        (360, 2, True), (420, 2, False),
    ]  # fmt: skip
    assert [p.per_minute for p in snap.plays_5m][4] == 1.0
    assert snap.current.plays_last_minute == 0  # the last whole minute, [300 s, 360 s)
    assert snap.current.plays_per_minute_5m == 2 / 5  # [60 s, 360 s)


def test_start_failures_count_refusals_and_sessions_failing_before_the_first_frame() -> None:
    feed = make_feed(now_s=100)
    for n in range(1, 5):
        feed.event("playback.started", started(f"s{n}"), t=n)
    feed.event(
        "playback.start_failed",
        {"profile_id": "p", "title_id": "t", "reason": "stream_limit", "device": "web"},
        t=5,
    )
    feed.event(
        "playback.start_failed",
        {"profile_id": "p", "title_id": "t", "reason": "maturity", "device": "web"},
        t=6,
    )
    error = {"title_id": "t", "code": "manifest", "fatal": False}
    feed.event("playback.error", {**error, "session_id": "s1", "before_first_frame": True}, t=7)
    feed.event("playback.error", {**error, "session_id": "s1", "before_first_frame": True}, t=8)
    feed.event("playback.error", {**error, "session_id": "s2", "before_first_frame": False}, t=9)
    feed.event(
        "playback.error",
        {**error, "session_id": "s3", "before_first_frame": True, "fatal": True},
        t=10,
    )
    feed.event("playback.started", started("s9"), t=95)  # closes the first minute
    (first, _) = feed.analytics.snapshot().starts
    assert first.final
    assert (first.started, first.refused, first.attempts) == (4, 2, 6)
    assert first.failed_before_first_frame == 2  # s1 once, however often it failed, and s3
    assert first.failures == 4
    assert first.failure_ratio == pytest.approx(4 / 6)
    assert first.reasons == {"stream_limit": 1, "maturity": 1, "before_first_frame": 2}


def test_rebuffer_ratio_is_stalled_over_watched_plus_stalled_per_minute() -> None:
    feed = make_feed(now_s=200)
    feed.event("playback.heartbeat", heartbeat("a", watched_ms=9000, rebuffer_ms=1000), t=61)
    feed.event("playback.heartbeat", heartbeat("b", watched_ms=10000, rebuffer_ms=0), t=70)
    feed.event("playback.heartbeat", heartbeat("c", watched_ms=0, rebuffer_ms=5000), t=119)
    legacy = heartbeat("d")
    del legacy["watched_ms"], legacy["rebuffer_ms"]  # an emitter that does not send them yet
    feed.event("playback.heartbeat", legacy, t=100)
    feed.event(
        "playback.rebuffered", {"session_id": "a", "title_id": "t", "duration_ms": 900}, t=110
    )
    snap = feed.analytics.snapshot()
    (minute,) = snap.rebuffering
    assert (minute.watched_ms, minute.rebuffer_ms, minute.heartbeats) == (19000, 6000, 4)
    assert minute.rebuffer_ratio == pytest.approx(6000 / 25000)
    assert minute.rebuffer_events == 1
    assert snap.current.rebuffer_ratio is None  # the last whole minute [0, 60) had no play


def test_concurrent_viewers_look_back_two_and_a_half_heartbeats_and_drop_stopped() -> None:
    feed = make_feed(now_s=300)
    feed.event("playback.started", started("s1"), t=0)
    feed.event("playback.started", started("s2"), t=5)
    feed.event("playback.heartbeat", heartbeat("s1"), t=10)
    feed.event("playback.heartbeat", heartbeat("s2"), t=15)
    feed.event("playback.heartbeat", heartbeat("s1"), t=20)
    feed.event("playback.heartbeat", heartbeat("s1"), t=30)
    feed.event("playback.stopped", stopped("s1"), t=35)
    feed.event("playback.started", started("s3"), t=42)
    feed.event("playback.started", started("s4"), t=200)  # watermark 170 s
    snap = feed.analytics.snapshot()
    values = _series(snap.viewers, "viewers")
    # A sample at e counts sessions active in [e - 25 s, e) and not stopped before e.
    assert values[:8] == [
        (10, 2, True), (20, 2, True), (30, 2, True), (40, 1, True), (50, 1, True),
        (60, 1, True), (70, 0, True), (80, 0, True),
    ]  # fmt: skip
    assert values[-5:] == [
        (170, 0, True), (180, 0, False), (190, 0, False), (200, 0, False), (210, 1, False),
    ]  # fmt: skip
    assert snap.current.viewers == 1  # s4, as of the newest event


def test_a_session_is_one_viewer_however_many_heartbeats_it_sends() -> None:
    feed = make_feed(now_s=100)
    for t in range(0, 60, 2):
        feed.event("playback.heartbeat", heartbeat("busy"), t=t)
    assert feed.analytics.snapshot().current.viewers == 1


def test_top_titles_rank_distinct_sessions_over_the_last_five_minutes() -> None:
    feed = make_feed(now_s=400)
    for i in range(12):
        for s in range(i + 1):
            for t in (10 + i, 40 + i):  # two heartbeats per session: still one session
                feed.event("playback.heartbeat", heartbeat(f"s{i}-{s}", f"title-{i:02}"), t=t)
    feed.event("playback.started", started("late-comer", "title-00"), t=100)
    top = feed.analytics.snapshot().top_titles
    assert top is not None
    assert [(t.title_id, t.sessions) for t in top.titles] == [
        (f"title-{i:02}", i + 1) for i in range(11, 1, -1)
    ]
    # The window ending at the first 30 s boundary after the newest event (100 s).
    assert (top.start, top.end, top.final) == (at(120 - 300), at(120), False)


def test_top_titles_forget_sessions_once_the_window_moves_past_them() -> None:
    feed = make_feed(now_s=1000)
    feed.event("playback.heartbeat", heartbeat("old", "title-old"), t=10)
    feed.event("playback.heartbeat", heartbeat("new", "title-new"), t=400)
    top = feed.analytics.snapshot().top_titles
    assert top is not None
    assert [t.title_id for t in top.titles] == ["title-new"]  # [120 s, 420 s)


def test_requests_and_errors_per_service_sum_over_processes() -> None:
    feed = make_feed(now_s=100)
    feed.event(
        "service.metrics",
        service_report(
            "a",
            playback={"requests": 100, "errors": 2, "client_errors": 5,
                      "latency_ms_p50": 10.0, "latency_ms_p99": 200.0},
            catalog={"requests": 50, "errors": 0, "client_errors": 0,
                     "latency_ms_p50": None, "latency_ms_p99": None},
        ),
        t=5,
    )  # fmt: skip
    feed.event(
        "service.metrics",
        service_report("b", playback={"requests": 300, "errors": 1, "client_errors": 0,
                                      "latency_ms_p50": 20.0, "latency_ms_p99": 150.0}),
        t=7,
    )  # fmt: skip
    feed.event("service.metrics", service_report("a"), t=95)  # an idle interval closes it
    snap = feed.analytics.snapshot()
    first = snap.services[0]
    assert first.final
    playback = first.services["playback"]
    assert (playback.requests, playback.errors, playback.client_errors) == (400, 3, 5)
    assert playback.error_ratio == pytest.approx(3 / 400)
    assert playback.requests_per_s == pytest.approx(400 / 60)
    assert playback.latency_ms_p50 == pytest.approx((10 * 100 + 20 * 300) / 400)
    assert playback.latency_ms_p99 == 200.0  # the worst process's
    assert playback.reports == 2
    catalog = first.services["catalog"]
    assert (catalog.requests, catalog.latency_ms_p50, catalog.latency_ms_p99) == (50, None, None)
    assert snap.current.requests_per_s == pytest.approx(450 / 60)
    assert snap.current.error_ratio == pytest.approx(3 / 450)


def test_browse_activity_per_minute() -> None:
    feed = make_feed(now_s=100)
    feed.event(
        "browse.impression",
        {"profile_id": "p", "surface": "home", "row": "new", "title_ids": ["a", "b", "c"]},
        t=1,
    )
    feed.event(
        "browse.impression",
        {"profile_id": "p", "surface": "home", "row": "top", "title_ids": ["a", "d"]},
        t=2,
    )
    feed.event(
        "browse.click",
        {"profile_id": "p", "title_id": "a", "surface": "home", "row": "new", "rank": 0},
        t=3,
    )
    feed.event("browse.search", {"profile_id": "p", "query_chars": 4, "results": 0}, t=4)
    feed.event("browse.search", {"profile_id": "p", "query_chars": 5, "results": 5}, t=5)
    (minute,) = feed.analytics.snapshot().browse
    assert (minute.impressions, minute.titles_shown, minute.clicks) == (2, 5, 1)
    assert (minute.searches, minute.zero_result_searches) == (2, 1)
    assert minute.click_through == pytest.approx(1 / 5)


BAD_EVENTS = [
    ("playback.heartbeat", heartbeat("s", watched_ms=True)),  # a bool is not a count
    ("playback.heartbeat", heartbeat("s", rebuffer_ms=-5)),
    ("playback.heartbeat", heartbeat("s", watched_ms=10**9)),
    ("playback.heartbeat", heartbeat("s", watched_ms="10")),
    ("playback.heartbeat", {"session_id": "s", "watched_ms": 1}),  # no title, no subject
    ("playback.started", {"title_id": "t"}),
    ("playback.started", started(123)),  # type: ignore[arg-type]
    ("playback.started", started("x" * 500)),
    ("playback.started", started("spaces are not ids")),
    ("playback.start_failed", {"title_id": "t", "reason": "Not A Slug!"}),
    ("playback.start_failed", {"title_id": "t"}),
    ("playback.error", {"session_id": "s", "before_first_frame": "yes"}),
    ("playback.error", {"session_id": "s", "fatal": 1}),
    ("playback.rebuffered", {"session_id": "s", "duration_ms": 1.5}),
    ("playback.stopped", {"session_id": None}),
    ("service.metrics", {"services": []}),
    ("service.metrics", {"services": {"Bad Name": {"requests": 1, "errors": 0}}}),
    ("service.metrics", {"services": {"a": {"requests": -1, "errors": 0}}}),
    (
        "service.metrics",
        {"services": {"a": {"requests": 1, "errors": 0, "latency_ms_p99": float("nan")}}},
    ),
    (
        "service.metrics",
        {"services": {"a": {"requests": 1, "errors": 0, "latency_ms_p50": "fast"}}},
    ),
    ("service.metrics", {"services": {"a": [1, 2]}}),
    ("service.metrics", {"services": {f"s{i}": {"requests": 1, "errors": 0} for i in range(300)}}),
    ("browse.impression", {"title_ids": "abc"}),
    ("browse.impression", {"title_ids": ["ok", {"no": "dict"}]}),
    ("browse.click", {"title_id": ""}),
    ("browse.search", {"results": None}),
]


def test_malformed_and_unknown_events_are_counted_and_skipped_never_raised() -> None:
    feed = make_feed(now_s=100)
    report = feed.analytics.ingest(
        [feed.record(type, data, t=10) for type, data in BAD_EVENTS]
        + [feed.record("playback.teleported", {"session_id": "s"}, t=10)]
        + [feed.record("weather.changed", {}, t=10, stream="playback")]
    )
    assert report.records == len(BAD_EVENTS) + 2
    assert report.applied == 0
    snap = feed.analytics.snapshot()
    malformed = {h.family: h.malformed for h in snap.ingest}
    assert sum(malformed.values()) == len(BAD_EVENTS)
    assert malformed == {"playback": 15, "browse": 4, "metrics": 7}
    assert snap.unknown_types == {"playback.teleported": 1, "weather.changed": 1}
    assert snap.plays_per_minute == [] or all(p.plays == 0 for p in snap.plays_per_minute)
    assert snap.current.viewers == 0
    assert snap.services == [] or all(not p.services for p in snap.services)


def test_a_title_id_may_come_from_the_subject() -> None:
    feed = make_feed(now_s=100)
    beat = heartbeat("s")
    del beat["title_id"]
    feed.event("playback.heartbeat", beat, t=10, subject="title-from-subject")
    top = feed.analytics.snapshot().top_titles
    assert top is not None
    assert [t.title_id for t in top.titles] == ["title-from-subject"]


def test_unknown_type_names_are_capped() -> None:
    feed = make_feed(now_s=100)
    feed.analytics.ingest([feed.record(f"made.up{i}", {}, t=1, stream="x") for i in range(100)])
    unknown = feed.analytics.snapshot().unknown_types
    assert len(unknown) == 65
    assert unknown["(other)"] == 36
    assert sum(unknown.values()) == 100
