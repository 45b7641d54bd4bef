"""Onboarding picks reach a cold profile's rows at once, and survive the next build."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from reelscale.catalog.service import slugify
from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.recs.rows import Row, Viewer
from reelscale.recs.serving import RecsService
from reelscale.recs.snapshot import build_model, genre_slug
from reelscale.recs.sources import ProfileRecord, StaticSources
from tests.conftest import Harness
from tests.recs.conftest import NOW
from tests.support import bearer, editor_token, member_token, profile_token

NEWCOMER = str(uuid.UUID(int=4242))


def picks_event(clock: FakeClock, data: dict[str, Any], *, later_s: float = 0.0) -> CloudEvent:
    """`profile.picks_updated` as accounts publishes it, `later_s` after the clock's now."""
    return CloudEvent(
        id=uuid.uuid4().hex,
        source="reelscale/accounts",
        type="profile.picks_updated",
        time=clock.now() + timedelta(seconds=later_s),
        subject=str(data.get("profile_id")),
        data=data,
    )


def top(rows: list[Row]) -> Row:
    return rows[0]


def first_genre_row(rows: list[Row]) -> str:
    return next(r.id for r in rows if r.id.startswith("genre:"))


@pytest.mark.parametrize(
    "name",
    ["Drama", "Sci-Fi", "Science Fiction", "Film-Noir", "Драма", "Straße", "!!!", "x" * 70],
)
def test_recs_keys_genres_as_the_catalog_slugs_them(name: str) -> None:
    assert genre_slug(name) == slugify(name)


def test_a_build_reads_picks_by_slug_as_well_as_by_name(platform_sources: StaticSources) -> None:
    by_slug = ProfileRecord(id="a", picked_genres=("sci-fi", "horror", "no-such-genre"))
    by_name = ProfileRecord(id="b", picked_genres=("Sci-Fi", "Horror"))
    model = build_model(
        titles=platform_sources.titles,
        signals=[],
        profiles=[by_slug, by_name],
        now=NOW,
        version=1,
    )
    names = [model.genre_names[g] for g in model.profiles["a"].genre_order]
    assert names == ["Horror", "Sci-Fi"]
    assert model.profiles["b"].genre_order == model.profiles["a"].genre_order


@pytest.mark.asyncio
async def test_new_picks_lead_a_cold_profiles_page_at_once(
    platform_sources: StaticSources,
) -> None:
    sources = replace(platform_sources, profiles=list(platform_sources.profiles))
    clock = FakeClock(NOW)
    service = RecsService(catalog=sources, signals=sources, profiles=sources, clock=clock)
    await service.start()
    try:
        viewer = Viewer(profile_id=NEWCOMER)
        before = service.home_rows(viewer=viewer)
        assert top(before).id != "top-picks"  # popularity: nothing is known of it yet
        picked = [platform_sources.titles[3].id, platform_sources.titles[8].id]
        # Saved just after the build below starts reading the platform, so it misses them.
        event = picks_event(
            clock,
            {"profile_id": NEWCOMER, "language": "en", "genres": ["horror"], "titles": picked},
            later_s=1,
        )
        await service.on_event(event)
        after = service.home_rows(viewer=viewer)
        assert top(after).id == "top-picks"
        assert top(after).title == "Picked for You"
        assert [c.id for c in top(after).items[:2]] == picked
        assert all("Horror" in c.genres for c in top(after).items[2:])
        assert first_genre_row(after) == "genre:Horror"

        # A build that read the platform before the picks were saved still shows them...
        await service.retrain()
        assert top(service.home_rows(viewer=viewer)).id == "top-picks"
        assert NEWCOMER in service.live.picks

        # ...and one that read them after (from accounts) needs the overlay no longer.
        sources.profiles.append(
            ProfileRecord(id=NEWCOMER, picked_genres=("horror",), picked_titles=tuple(picked))
        )
        clock.advance(60)
        await service.retrain()
        assert NEWCOMER not in service.live.picks
        rebuilt = service.home_rows(viewer=viewer)
        assert [(r.id, r.items) for r in rebuilt] == [(r.id, r.items) for r in after]

        # A redelivered event changes nothing; an older one does not undo newer picks.
        await service.on_event(event)
        assert NEWCOMER not in service.live.picks
        clock.advance(60)
        newer = picks_event(
            clock, {"profile_id": NEWCOMER, "language": "en", "genres": ["comedy"], "titles": []}
        )
        await service.on_event(newer)
        stale = picks_event(
            FakeClock(NOW), {"profile_id": NEWCOMER, "genres": ["war"], "titles": []}
        )
        await service.on_event(stale)
        latest = top(service.home_rows(viewer=viewer))
        assert latest.id == "top-picks"
        assert all("Comedy" in c.genres for c in latest.items)
    finally:
        await service.stop()


@pytest.mark.asyncio
async def test_picks_do_not_overturn_a_profiles_history(platform_sources: StaticSources) -> None:
    clock = FakeClock(NOW)
    service = RecsService(
        catalog=platform_sources, signals=platform_sources, profiles=platform_sources, clock=clock
    )
    await service.start()
    try:
        warm = next(p for p, s in service.model.profiles.items() if s.candidates and s.progress)
        before = service.home_rows(viewer=Viewer(profile_id=warm))
        clock.advance(60)
        data = {"profile_id": warm, "language": "en", "genres": ["western"], "titles": []}
        await service.on_event(picks_event(clock, data))
        after = service.home_rows(viewer=Viewer(profile_id=warm))
        assert [r.id for r in after] == [r.id for r in before]
    finally:
        await service.stop()


MALFORMED: list[dict[str, Any]] = [
    {},
    {"profile_id": NEWCOMER},
    {"profile_id": NEWCOMER, "genres": "horror", "titles": []},
    {"profile_id": NEWCOMER, "genres": ["horror"], "titles": None},
    {"profile_id": 7, "genres": ["horror"], "titles": []},
    {"profile_id": "", "genres": ["horror"], "titles": []},
]


@pytest.mark.asyncio
async def test_malformed_picks_events_are_ignored(platform_sources: StaticSources) -> None:
    clock = FakeClock(NOW)
    service = RecsService(catalog=platform_sources, signals=platform_sources, clock=clock)
    await service.start()
    try:
        before = service.home_rows(viewer=Viewer(profile_id=NEWCOMER))
        for data in MALFORMED:
            await service.on_event(picks_event(clock, data))
        assert service.live.picks == {}
        assert service.home_rows(viewer=Viewer(profile_id=NEWCOMER)) == before
    finally:
        await service.stop()


GENRES = ["Drama", "Horror", "Comedy", "Drama"]


def home_of(h: Harness, token: str) -> Any:
    return h.client.get("/v1/recs/home", headers=bearer(token))


async def test_picks_reach_the_profiles_home_through_the_stream(sqlite_harness: Harness) -> None:
    """PUT picks -> accounts publishes -> the recs-profiles function -> the next home page."""
    h = sqlite_harness
    editor = await editor_token(h.client, h.app)
    ids: list[str] = []
    for n in range(24):
        made = await h.client.post(
            "/v1/catalog/titles",
            headers=bearer(editor),
            json={
                "kind": "movie",
                "name": f"Pick Title {n}",
                "release_year": 2000 + n,
                "maturity_rating": "PG",
                "original_language": "en",
                "genres": [GENRES[n % 4]],
                "popularity": 100.0 if GENRES[n % 4] == "Drama" else float(n),
            },
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    await h.app.state.recs.retrain()  # don't wait for the catalog's debounced rebuild
    account = await member_token(h.client)
    profile_id, token = await profile_token(h.client, account, "Newcomer")
    before = (await home_of(h, token)).json()
    assert before["rows"][0]["id"] == "popular"
    assert before["rows"][0]["items"][0]["genres"] == ["Drama"]

    picked = [ids[2], ids[6]]  # comedies
    saved = await h.client.put(
        f"/v1/profiles/{profile_id}/picks",
        json={"genres": ["horror"], "titles": picked},
        headers=bearer(account),
    )
    assert saved.status_code == 200, saved.text
    for _ in range(200):
        home = (await home_of(h, token)).json()
        if home["rows"][0]["id"] == "top-picks":
            break
        await asyncio.sleep(0.05)
    first = home["rows"][0]
    assert first["id"] == "top-picks", home
    assert [c["id"] for c in first["items"][:2]] == picked
    assert all(c["genres"] == ["Horror"] for c in first["items"][2:])
    assert len(first["items"]) == 2 + GENRES.count("Horror") * 6  # every horror title
    status = {s.name: s for s in await h.app.state.functions.status()}["recs-profiles"]
    assert status.invocations >= 1
    assert status.errors == 0

    # The next build reads the same picks from accounts: the page stays as it is.
    await h.app.state.recs.retrain()
    assert h.app.state.recs.live.picks == {}
    rebuilt = (await home_of(h, token)).json()
    assert rebuilt["rows"] == home["rows"]
