"""The context ranker on data with a planted daily rhythm, its fallback, and thumbs."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.recs.context import (
    DEVICE_CLASSES,
    UNKNOWN_DEVICE,
    context_of,
    device_class,
    device_from_user_agent,
)
from reelscale.recs.contextrank import SignalTable
from reelscale.recs.contexttrain import RankerConfig, _latest_positives
from reelscale.recs.live import LiveSignals
from reelscale.recs.rhythm import group_of
from reelscale.recs.rows import Row, RowBuilder, Viewer, ranked_candidates
from reelscale.recs.serving import RecsService
from reelscale.recs.snapshot import BuildConfig, RecsModel, build_model, signal_weight
from reelscale.recs.sources import SignalRecord, StaticSources
from tests.recs.conftest import NOW

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
EVENING, MORNING = MONDAY.replace(hour=20, minute=30), MONDAY.replace(hour=7, minute=30)


def home(model: RecsModel, profile: str, at: datetime, device: str | None = None) -> list[Row]:
    live = LiveSignals()
    live.rebase(model)
    viewer = Viewer(profile_id=profile, device=device)
    return RowBuilder().home(model=model, live=live, viewer=viewer, now=at)


def top_picks(rows: list[Row]) -> list[str]:
    return [c.id for c in next(r for r in rows if r.id == "top-picks").items]


def genre_rows(rows: list[Row]) -> list[str]:
    return [r.id.removeprefix("genre:") for r in rows if r.id.startswith("genre:")]


def share(model: RecsModel, titles: list[str], genre: str) -> float:
    return sum(genre in model.cards[model.index[t]].genres for t in titles) / len(titles)


def test_the_ranker_is_trained_on_a_time_split_and_kept_when_it_beats_the_collaborative_order(
    rhythm_model: RecsModel,
) -> None:
    stats = rhythm_model.stats
    assert stats["context_kept"] == 1.0
    assert stats["context_lists"] >= 500
    assert stats["context_ndcg_ranked"] > stats["context_ndcg_collab"] + 0.03
    assert rhythm_model.context is not None
    weights = rhythm_model.context.report
    # What it learnt is the planted rhythm: the profile's own genre taste at this hour.
    assert weights["w_genre_hour"] > 0.5
    assert weights["w_genre_hour"] > abs(weights["w_platform_hour"]) * 5


@pytest.mark.parametrize("device", [None, "match"])
def test_top_picks_and_genre_rows_follow_the_hour(
    rhythm_model: RecsModel, device: str | None
) -> None:
    profiles = sorted(rhythm_model.profiles, key=lambda p: int(p.rsplit("-", 1)[1]))[:24]
    for profile in profiles:
        evening_genre, morning_genre = group_of(profile)
        night = home(rhythm_model, profile, EVENING, device and "roku-tv")
        day = home(rhythm_model, profile, MORNING, device and "iphone")
        assert share(rhythm_model, top_picks(night)[:10], evening_genre) >= 0.8, profile
        assert share(rhythm_model, top_picks(day)[:10], morning_genre) >= 0.8, profile
        night_order, day_order = genre_rows(night), genre_rows(day)
        assert night_order.index(evening_genre) < night_order.index(morning_genre), profile
        assert day_order.index(morning_genre) < day_order.index(evening_genre), profile


def test_without_the_context_ranker_the_hour_changes_nothing(
    rhythm_sources: StaticSources,
) -> None:
    model = build_model(
        titles=rhythm_sources.titles,
        signals=rhythm_sources.signals,
        profiles=rhythm_sources.profiles,
        now=NOW,
        version=1,
        config=BuildConfig(context_ranker=False),
    )
    assert model.context is None
    profile = next(iter(model.profiles))
    assert top_picks(home(model, profile, EVENING)) == top_picks(home(model, profile, MORNING))


def test_a_new_platform_falls_back_to_the_collaborative_order(
    rhythm_sources: StaticSources,
) -> None:
    few = {f"profile-{n}" for n in range(6)}
    model = build_model(
        titles=rhythm_sources.titles,
        signals=[s for s in rhythm_sources.signals if s.profile_id in few],
        profiles=rhythm_sources.profiles,
        now=NOW,
        version=1,
    )
    assert model.context is None
    assert model.stats["context_kept"] == 0.0
    assert model.stats["context_profiles"] == 6.0
    rows = home(model, "profile-0", EVENING, "tv")
    state = model.profiles["profile-0"]
    assert top_picks(rows) == [model.item_ids[i] for i in state.candidates][:20]


def test_a_thumbs_down_removes_the_title_and_demotes_its_neighbours(
    rhythm_sources: StaticSources, rhythm_model: RecsModel
) -> None:
    profile = "profile-0"
    before = top_picks(home(rhythm_model, profile, EVENING))

    def near_of(title: str) -> list[str]:
        return [
            rhythm_model.item_ids[i] for i in rhythm_model.similar[rhythm_model.index[title]][:3]
        ]

    # A pick whose closest neighbours are picks too.
    disliked = next(t for t in before if set(near_of(t)) & set(before))
    near = near_of(disliked)
    down = SignalRecord(profile, disliked, 0.0, 6000.0, NOW - timedelta(hours=1), thumb=-1)
    model = build_model(
        titles=rhythm_sources.titles,
        signals=[*rhythm_sources.signals, down],
        profiles=rhythm_sources.profiles,
        now=NOW,
        version=2,
    )
    rows = home(model, profile, EVENING)
    assert disliked not in {c.id for r in rows for c in r.items}
    after = top_picks(rows)
    assert not set(near) & set(after)
    state = model.profiles[profile]
    order = ranked_candidates(model, state, context_of(EVENING, None), state.disliked)
    demoted = set(model.similar[model.index[disliked]][:3]) & set(order)
    assert demoted
    assert set(order[-len(demoted) :]) == demoted  # last, behind every other candidate


def event(clock: FakeClock, type: str, title: str, data: dict[str, object]) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4().hex,
        source="test",
        type=type,
        time=clock.now(),
        subject=title,
        data=data | {"title_id": title},
    )


async def test_live_thumbs_act_at_once_and_can_be_taken_back(
    rhythm_sources: StaticSources,
) -> None:
    clock = FakeClock(EVENING)
    sources = replace(rhythm_sources, signals=list(rhythm_sources.signals))
    service = RecsService(catalog=sources, signals=sources, profiles=sources, clock=clock)
    await service.start()
    try:
        profile = "profile-1"
        viewer = Viewer(profile)
        first = top_picks(service.home_rows(viewer=viewer))[0]
        clock.advance(60)
        thumb: dict[str, object] = {"profile_id": profile, "thumb": -1}
        await service.on_event(event(clock, "playback.thumb", first, thumb))
        rows = service.home_rows(viewer=viewer)
        assert first not in {c.id for r in rows for c in r.items}
        assert service.builds == 1  # no rebuild was needed

        clock.advance(60)
        await service.on_event(event(clock, "playback.thumb", first, thumb | {"thumb": 0}))
        assert top_picks(service.home_rows(viewer=viewer))[0] == first

        clock.advance(60)
        await service.on_event(event(clock, "playback.thumb", first, thumb | {"thumb": 1}))
        ids = [r.id for r in service.home_rows(viewer=viewer)]
        assert f"because-you-liked:{first}" in ids
        # Disliking a title watched to the end drops the row it seeded.
        seeded = next(r.id for r in service.home_rows(viewer=viewer) if "watched:" in r.id)
        watched = seeded.split(":", 1)[1]
        await service.on_event(event(clock, "playback.thumb", watched, thumb))
        assert seeded not in [r.id for r in service.home_rows(viewer=viewer)]

        bad: list[dict[str, object]] = [{"thumb": 5}, {"thumb": True}, {"thumb": "1"}]
        bad += [{"profile_id": 7}, {"profile_id": ""}]
        for data in bad:
            await service.on_event(event(clock, "playback.thumb", first, thumb | data))
        assert service.live.thumbs[profile][first].thumb == 1
    finally:
        await service.stop()


def test_a_thumbs_up_is_a_strong_yes() -> None:
    """A title merely sampled but liked counts more than one watched to the end."""
    at = NOW - timedelta(days=1)
    sampled = SignalRecord("p", "t", 60.0, 6000.0, at, thumb=1)
    watched = SignalRecord("p", "t", 6000.0, 6000.0, at, watched=True)
    now = NOW.timestamp()
    liked = signal_weight(sampled, fraction=0.01, now=now, abandon_s=1e9)
    assert liked > signal_weight(watched, fraction=1.0, now=now, abandon_s=1e9)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web", "web"), ("tv", "tv"), ("android-tv", "tv"), ("roku", "tv"), ("ipad", "tablet"),
        ("ios", "mobile"), ("android", "mobile"), ("iPhone", "mobile"), ("fridge", "other"),
    ],
)  # fmt: skip
def test_device_names_fold_into_classes(name: str, expected: str) -> None:
    assert DEVICE_CLASSES[device_class(name)] == expected
    assert device_class(None) == UNKNOWN_DEVICE


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36", "web"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", "mobile"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X200) Chrome/120 Safari/537.36", "tablet"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "tablet"),
        ("Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) SamsungBrowser/4.0", "tv"),
        ("Roku/DVP-12.5 (12.5.0.4174)", "tv"),
        ("curl/8.5.0", None),
        (None, None),
    ],
)
def test_user_agents_suggest_a_device_class(agent: str | None, expected: str | None) -> None:
    assert device_from_user_agent(agent) == expected


def test_context_of_a_moment_is_utc_hour_bucket_week_part_and_device() -> None:
    saturday_late = datetime(2026, 1, 10, 23, 59, tzinfo=UTC)
    context = context_of(saturday_late, "tv")
    assert (context.hour, context.week, DEVICE_CLASSES[context.device]) == (7, 1, "tv")
    tokyo_afternoon = datetime(2026, 1, 5, 16, 0, tzinfo=timezone(timedelta(hours=9)))
    assert context_of(tokyo_afternoon, None).hour == 2  # 07:00 UTC: hours are UTC


def test_the_holdout_is_each_profiles_latest_positives() -> None:
    # Profile 0: ten positives at t = 1..10 and a later non-positive; profile 1: three only.
    users = np.array([0] * 11 + [1] * 3)
    stamps = np.array([*range(1, 11), 11, 1, 2, 3], dtype=np.float64)
    positive = np.array([True] * 10 + [False] + [True] * 3)
    n = len(users)
    table = SignalTable(
        users=users,
        items=np.arange(n),
        weights=np.ones(n),
        stamps=stamps,
        hours=np.zeros(n, dtype=np.int64),
        weeks=np.zeros(n, dtype=np.int64),
        devices=np.zeros(n, dtype=np.int64),
        positive=positive,
        n_users=2,
    )
    held, cutoff = _latest_positives(table, RankerConfig(min_positives=4))
    assert np.flatnonzero(held).tolist() == [8, 9]  # 20% of ten: the two latest positives
    assert cutoff.tolist() == [9.0, np.inf]  # profile 1 has too few to hold any out
