"""Home rows and More Like This from a model built on synthetic platform data."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from reelscale.core.errors import NotFound
from reelscale.recs.live import LiveSignals
from reelscale.recs.rows import Row, RowBuilder, Viewer
from reelscale.recs.snapshot import RecsModel, build_model
from reelscale.recs.sources import ProfileRecord, StaticSources
from tests.recs.conftest import NOW


def home(model: RecsModel, viewer: Viewer, live: LiveSignals | None = None) -> list[Row]:
    if live is None:
        live = LiveSignals()
        live.rebase(model)
    return RowBuilder().home(model=model, live=live, viewer=viewer, now=NOW)


def allowed(model: RecsModel, item: int, ceiling: int, now: datetime = NOW) -> bool:
    ts = now.timestamp()
    return (
        model.maturity[item] <= ceiling
        and model.available_from[item] <= ts < model.available_until[item]
    )


def busiest(model: RecsModel, n: int = 1) -> list[str]:
    """Profiles with the most history, most first."""
    return sorted(model.profiles, key=lambda p: -len(model.profiles[p].progress))[:n]


def test_warm_profile_gets_the_full_set_of_rows_with_no_title_twice(
    platform_model: RecsModel,
) -> None:
    profile = busiest(platform_model)[0]
    rows = home(platform_model, Viewer(profile_id=profile))
    ids = [r.id for r in rows]
    assert ids[0] == "continue-watching"
    assert "top-picks" in ids
    assert "trending" in ids
    assert any(i.startswith("because-you-watched:") for i in ids)
    assert sum(i.startswith("genre:") for i in ids) >= 3
    shown = Counter(card.id for row in rows for card in row.items)
    assert shown
    assert max(shown.values()) == 1
    assert ids.index("top-picks") < ids.index("trending")


def test_continue_watching_holds_exactly_the_titles_between_5_and_90_percent(
    platform_model: RecsModel,
) -> None:
    profile = busiest(platform_model)[0]
    rows = home(platform_model, Viewer(profile_id=profile))
    resume = rows[0]
    state = platform_model.profiles[profile]
    expected = [
        m.item
        for m in sorted(state.progress, key=lambda m: -m.updated)
        if not m.watched
        and 0.05 <= m.fraction < 0.9
        and allowed(platform_model, m.item, 18)
        and m.item not in state.disliked  # a thumbs down is not resumed either
    ][:20]
    assert [platform_model.index[c.id] for c in resume.items] == expected
    assert all(0.05 <= f < 0.9 for f in resume.progress)


def test_maturity_ceiling_and_availability_window_hold_in_every_row(
    platform_model: RecsModel,
) -> None:
    hidden = [i for i in range(platform_model.n_items) if not allowed(platform_model, i, 18)]
    assert hidden  # the fixture has titles outside their window
    for profile in busiest(platform_model, 5):
        for ceiling in (7, 13):
            rows = home(platform_model, Viewer(profile_id=profile, max_maturity=ceiling))
            items = [platform_model.index[c.id] for row in rows for c in row.items]
            assert items
            assert all(allowed(platform_model, i, ceiling) for i in items)


def test_row_order_follows_each_profiles_genre_affinity(platform_model: RecsModel) -> None:
    orders = {}
    for profile in busiest(platform_model, 40):
        state = platform_model.profiles[profile]
        rows = home(platform_model, Viewer(profile_id=profile))
        genre_rows = [r.id for r in rows if r.id.startswith("genre:")]
        top = platform_model.genre_names[state.genre_order[0]]
        assert genre_rows[0] == f"genre:{top}"
        orders[profile] = tuple(r.id.split(":")[0] for r in rows)
    assert len({tuple(o) for o in orders.values()}) > 1  # not one layout for everybody


def test_disliked_titles_never_come_back(platform_model: RecsModel) -> None:
    profiles = [p for p, s in platform_model.profiles.items() if s.disliked][:10]
    assert profiles
    for profile in profiles:
        disliked = platform_model.profiles[profile].disliked
        rows = home(platform_model, Viewer(profile_id=profile))
        assert not {platform_model.index[c.id] for row in rows for c in row.items} & disliked


def test_cold_start_uses_onboarding_picks_and_the_profiles_language(
    platform_sources: StaticSources,
) -> None:
    picks = platform_sources.titles[5].id, platform_sources.titles[9].id
    newcomer = ProfileRecord(
        id="newcomer", language="ja", picked_genres=("Horror",), picked_titles=picks
    )
    model = build_model(
        titles=platform_sources.titles,
        signals=platform_sources.signals,
        profiles=[*platform_sources.profiles, newcomer],
        now=NOW,
        version=1,
    )
    rows = home(model, Viewer(profile_id="newcomer"))
    ids = [r.id for r in rows]
    assert "continue-watching" not in ids
    first = rows[0]
    assert first.id == "top-picks"
    assert first.title == "Picked for You"
    visible = [p for p in picks if allowed(model, model.index[p], 18)]
    assert [c.id for c in first.items[: len(visible)]] == visible
    assert all("Horror" in c.genres for c in first.items[len(visible) :])
    popular = rows[ids.index("popular")]
    assert popular.title == "Popular in Japanese"
    assert all(c.language == "ja" for c in popular.items)
    assert next(i for i in ids if i.startswith("genre:")) == "genre:Horror"


def test_picked_titles_bring_rows_of_their_neighbours(platform_sources: StaticSources) -> None:
    busiest_titles = sorted(
        platform_sources.titles,
        key=lambda t: -sum(1 for s in platform_sources.signals if s.title_id == t.id),
    )
    picks = (busiest_titles[0].id,)
    newcomer = ProfileRecord(id="newcomer", picked_titles=picks)
    model = build_model(
        titles=platform_sources.titles,
        signals=platform_sources.signals,
        profiles=[*platform_sources.profiles, newcomer],
        now=NOW,
        version=1,
    )
    rows = {r.id: r for r in home(model, Viewer(profile_id="newcomer"))}
    row = rows[f"because-you-picked:{picks[0]}"]
    picked = model.index[picks[0]]
    assert row.title == f"Because You Picked {model.cards[picked].name}"
    neighbours = {model.item_ids[i] for i in model.neighbours[picked]}
    shown = [c.id for c in row.items]
    assert shown
    assert picks[0] not in shown
    assert shown[0] in neighbours  # led by what watchers of the pick watched


def test_unknown_profile_gets_popular_and_trending_rows(platform_model: RecsModel) -> None:
    rows = home(platform_model, Viewer(profile_id="never-seen", language="fr"))
    ids = [r.id for r in rows]
    assert ids[:2] == ["popular", "trending"] or ids[:2] == ["trending", "popular"]
    assert rows[ids.index("popular")].items[0].language == "fr"
    assert sum(i.startswith("genre:") for i in ids) >= 3


def test_more_like_this_neighbours_share_taste_or_genres(platform_model: RecsModel) -> None:
    builder, live = RowBuilder(), LiveSignals()
    title = platform_model.item_ids[platform_model.popular[0]]
    row = builder.more_like_this(
        model=platform_model, live=live, title_id=title, viewer=Viewer("x", 13), now=NOW
    )
    items = [platform_model.index[c.id] for c in row.items]
    assert len(items) == 20
    assert title not in {c.id for c in row.items}
    assert all(allowed(platform_model, i, 13) for i in items)
    genres = set(platform_model.cards[platform_model.index[title]].genres)
    sharing = sum(bool(genres & set(c.genres)) for c in row.items)
    assert sharing >= 12  # planted: genres follow taste clusters
    with pytest.raises(NotFound):
        builder.more_like_this(
            model=platform_model, live=live, title_id="nope", viewer=Viewer("x"), now=NOW
        )


def test_a_title_leaving_the_catalog_disappears_at_its_window(platform_model: RecsModel) -> None:
    profile = busiest(platform_model)[0]
    later = NOW + timedelta(days=40)  # titles opening in 30 days are in, closed ones stay out
    live = LiveSignals()
    live.rebase(platform_model)
    rows = RowBuilder().home(model=platform_model, live=live, viewer=Viewer(profile), now=later)
    items = [platform_model.index[c.id] for row in rows for c in row.items]
    assert all(allowed(platform_model, i, 18, later) for i in items)
