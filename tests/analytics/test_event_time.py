"""Event time: lateness, disorder across shards, redelivery, clocks, and bounded memory."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from reelscale.analytics.aggregates import MINUTE, SECOND
from reelscale.analytics.windows import Window
from tests.analytics.support import (
    Feed,
    heartbeat,
    make_feed,
    ms,
    service_report,
    started,
    stopped,
)


def _plays(feed: Feed) -> dict[int, int]:
    """Plays per minute, by the minute's index from T0."""
    snap = feed.analytics.snapshot()
    return {
        int(p.start.timestamp() * 1000 - ms(0)) // MINUTE: p.plays for p in snap.plays_per_minute
    }


def _health(feed: Feed, family: str = "playback") -> dict[str, int]:
    (h,) = [h for h in feed.analytics.snapshot().ingest if h.family == family]
    return h.model_dump(exclude={"family", "watermark", "newest_event"})


def test_an_event_older_than_the_watermark_is_late_counted_and_dropped() -> None:
    feed = make_feed(now_s=600)
    feed.event("playback.started", started("a"), t=100)
    feed.event("playback.started", started("b"), t=200)  # watermark 170 s
    feed.event("playback.started", started("late"), t=150)
    feed.event("playback.started", started("on-time"), t=175)  # disorder within 30 s is fine
    assert _plays(feed) == {1: 1, 2: 1, 3: 1}  # 100 s, 175 s, 200 s
    assert _health(feed)["late"] == 1
    assert _health(feed)["applied"] == 3


def test_a_shard_that_lags_behind_holds_the_watermark_not_its_events_late() -> None:
    feed = make_feed(now_s=900)
    # Shard 1's reader runs three minutes behind shard 0's, batch after batch (both shards
    # are known from the first batch on: see the warm-up tests for how that is ensured).
    feed.send(
        feed.record("playback.started", started("fast"), t=270, shard=0),
        feed.record("playback.started", started("slow"), t=90, shard=1),
    )
    for step in range(10):
        t = 300 + step * 30
        feed.send(feed.record("playback.started", started(f"fast{step}"), t=t, shard=0))
        feed.send(feed.record("playback.started", started(f"slow{step}"), t=t - 180, shard=1))
    assert _health(feed)["late"] == 0
    plays = _plays(feed)
    assert sum(plays.values()) == 22
    # The watermark follows the slow shard: 570 - 180 - 30 s.
    assert feed.analytics.watermarks["playback"].value == ms(360)


def test_on_start_every_shard_is_heard_before_the_watermark_is_set() -> None:
    # Catching up after a start, shard 0 answers first with events minutes ahead of shard 1.
    feed = make_feed(now_s=900, warmup_s=10)
    feed.send(
        *[
            feed.record("playback.started", started(f"a{t}"), t=t, shard=0)
            for t in range(300, 600, 10)
        ]
    )
    feed.clock.advance(1)
    feed.send(
        *[
            feed.record("playback.started", started(f"b{t}"), t=t, shard=1)
            for t in range(60, 300, 10)
        ]
    )
    assert feed.analytics.watermarks["playback"].value is None
    feed.clock.advance(10)
    feed.send(feed.record("playback.started", started("c"), t=590, shard=1))
    assert feed.analytics.watermarks["playback"].value == ms(590 - 30)
    assert _health(feed)["late"] == 0
    assert sum(_plays(feed).values()) == 30 + 24 + 1


def test_without_the_warm_up_the_first_shard_would_make_the_others_late() -> None:
    feed = make_feed(now_s=900, warmup_s=0)
    feed.send(feed.record("playback.started", started("a"), t=500, shard=0))
    feed.send(feed.record("playback.started", started("b"), t=100, shard=1))
    assert _health(feed)["late"] == 1


def test_redelivered_records_are_applied_once() -> None:
    feed = make_feed(now_s=100)
    batch = [feed.record("playback.started", started(f"s{i}"), t=10 + i) for i in range(5)]
    feed.send(*batch)
    feed.send(*batch[2:])  # the function retried after a timeout: at least once
    feed.send(batch[0])
    assert _plays(feed) == {0: 5}
    assert _health(feed)["duplicates"] == 4
    # Another shard's sequences are its own.
    feed.send(feed.record("playback.started", started("other"), t=20, shard=3))
    assert _plays(feed) == {0: 6}


def test_events_from_a_wrong_clock_or_past_the_retention_are_refused() -> None:
    feed = make_feed(now_s=4000)
    feed.event("playback.started", started("future"), t=4000 + 61)
    feed.event("playback.started", started("ancient"), t=4000 - 3601)
    feed.event("playback.started", started("fine"), t=3990)
    health = _health(feed)
    assert (health["future"], health["too_old"], health["applied"]) == (1, 1, 1)
    # The far-future event did not drag the watermark ahead.
    assert feed.analytics.watermarks["playback"].value == ms(3990 - 30)


def test_with_every_shard_idle_windows_close_on_the_wall_clock() -> None:
    feed = make_feed(now_s=100)
    feed.event("playback.started", started("a"), t=95)
    feed.event("playback.heartbeat", heartbeat("a"), t=99)
    snap = feed.analytics.snapshot()
    assert snap.current.viewers == 1
    assert not snap.plays_per_minute[-1].final
    feed.clock.advance(120)  # nothing arrives for two minutes
    snap = feed.analytics.snapshot()
    assert snap.plays_per_minute[0].final  # watermark = wall clock - lateness = 190 s
    assert feed.analytics.watermarks["playback"].value == ms(190)
    assert snap.viewers[-1].viewers == 0  # the session went quiet: nobody is watching
    assert snap.current.viewers == 0


def test_memory_stays_bounded_over_hours_of_traffic() -> None:
    feed = make_feed(now_s=0, retention_s=3600)
    rng = random.Random(7)
    for step in range(3 * 360):  # three hours, 10 s at a time
        t = step * 10
        feed.clock.advance(10)
        batch = [
            feed.record(
                "playback.heartbeat",
                heartbeat(f"s{step // 30}-{n}", f"t{n % 7}"),
                t=t + rng.random(),
                shard=n % 4,
            )
            for n in range(20)
        ]
        if step % 30 == 0:  # twenty sessions start, play five minutes and stop
            batch += [
                feed.record("playback.started", started(f"s{step // 30}-{n}"), t=t, shard=n % 4)
                for n in range(20)
            ]
        batch.append(
            feed.record(
                "service.metrics", service_report("a", api={"requests": 5, "errors": 0}), t=t
            )
        )
        if step % 30 == 29 and step < 3 * 360 - 30:
            batch += [
                feed.record("playback.stopped", stopped(f"s{step // 30}-{n}"), t=t + 5, shard=n % 4)
                for n in range(20)
            ]
        feed.send(*batch)
    pb = feed.analytics.playback
    # The retention (60 windows of a minute) plus those still open inside the lateness.
    assert pb.minutes.final_windows <= 61
    assert pb.minutes.open_windows <= 2
    assert pb.plays_5m.final_windows <= 61
    assert pb.plays_5m.open_windows <= 6
    assert pb.titles.final_windows <= 121
    assert pb.titles.open_windows <= 12
    assert len(pb.viewers._samples) <= 361
    assert len(pb.viewers._activity) <= 8
    assert len(pb.viewers._stopped) <= 40
    assert feed.analytics.metrics.minutes.final_windows <= 61
    snap = feed.analytics.snapshot()
    assert len(snap.plays_per_minute) == 60
    assert len(snap.viewers) == 360
    assert snap.current.viewers == 20
    assert _health(feed)["late"] == 0


# ---------------------------------------------------------------- against a reference


@st.composite
def playback_streams(draw: st.DrawFn) -> list[tuple[float, str, str, str, int, int, int]]:
    """(event time s, type, session, title, shard, watched_ms, rebuffer_ms) in event order."""
    events = []
    for n in range(draw(st.integers(min_value=1, max_value=25))):
        session, title = f"s{n}", f"t{draw(st.integers(0, 4))}"
        shard = draw(st.integers(0, 3))
        t = draw(st.floats(min_value=0, max_value=500))
        events.append((t, "playback.started", session, title, shard, 0, 0))
        for _ in range(draw(st.integers(0, 8))):
            t += draw(st.floats(min_value=1, max_value=15))
            watched = draw(st.integers(0, 10_000))
            stall = draw(st.integers(0, 3_000))
            events.append((t, "playback.heartbeat", session, title, shard, watched, stall))
        if draw(st.booleans()):
            events.append((t + 1, "playback.stopped", session, title, shard, 0, 0))
    return events


@settings(max_examples=60, deadline=None)
@given(stream=playback_streams(), seed=st.integers(0, 2**32 - 1))
def test_windows_match_a_brute_force_reference_under_bounded_disorder(
    stream: list[tuple[float, str, str, str, int, int, int]], seed: int
) -> None:
    """Events arrive up to 20 s out of order (less than the 30 s lateness), spread over four
    shards and cut into random batches: every final window must equal what a brute-force
    count over the whole stream gives."""
    rng = random.Random(seed)
    feed = make_feed(now_s=600)
    arrival = sorted(stream, key=lambda e: e[0] + rng.uniform(0, 20))
    records = []
    for t, type, session, title, shard, watched, stall in arrival:
        if type == "playback.started":
            data = started(session, title)
        elif type == "playback.heartbeat":
            data = heartbeat(session, title, watched_ms=watched, rebuffer_ms=stall)
        else:
            data = stopped(session, title)
        records.append(feed.record(type, data, t=t, shard=shard))
    while records:
        cut = rng.randint(1, 10)
        feed.send(*records[:cut])
        records = records[cut:]
    feed.clock.advance(60)  # every shard idle: the watermark passes everything
    feed.clock.advance(700)
    snap = feed.analytics.snapshot()
    assert all(h.late == 0 and h.malformed == 0 for h in snap.ingest)

    plays: dict[int, int] = defaultdict(int)
    watched_ms: dict[int, int] = defaultdict(int)
    for t, type, _, _, _, watched, _ in stream:
        minute = int(ms(t) - ms(0)) // MINUTE
        plays[minute] += type == "playback.started"
        watched_ms[minute] += watched
    watermark = feed.analytics.watermarks["playback"].value
    assert watermark is not None
    for point in snap.plays_per_minute:
        assert point.final == (point.end.timestamp() * 1000 <= watermark)
        minute = int(point.start.timestamp() * 1000 - ms(0)) // MINUTE
        assert point.plays == plays.get(minute, 0)
    for point in snap.rebuffering:
        minute = int(point.start.timestamp() * 1000 - ms(0)) // MINUTE
        assert point.watched_ms == watched_ms.get(minute, 0)

    # Concurrent viewers at every final sample, by the definition.
    stops = {s: ms(t) for t, type, s, *_ in stream if type == "playback.stopped"}
    active = [(ms(t), s) for t, type, s, *_ in stream if type != "playback.stopped"]
    for point in snap.viewers:
        e = int(point.end.timestamp() * 1000)
        expected = {s for t, s in active if e - 25 * SECOND <= t < e and stops.get(s, e) >= e}
        assert point.viewers == len(expected), point

    # Top titles over any final 5-minute window.
    titles = feed.analytics.playback.titles
    for end in range(0, 600 * SECOND + 1, 30 * SECOND):
        window = Window(ms(0) + end - 5 * MINUTE, ms(0) + end)
        result = titles.get(window)
        sessions: dict[str, set[str]] = defaultdict(set)
        for t, type, s, title, *_ in stream:
            if type != "playback.stopped" and ms(t) in window:
                sessions[title].add(s)
        expected_top = sorted(((-len(v), k) for k, v in sessions.items()))[:10]
        assert result.result.titles == [(k, -n) for n, k in expected_top]
