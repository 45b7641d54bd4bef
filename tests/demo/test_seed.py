"""The demo seed: deterministic, believable, idempotent, and usable right away."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from reelscale.core.maturity import KIDS_DEFAULT_LEVEL, level_of
from reelscale.demo.seed import CREDENTIALS, TITLE_COUNT, demo_id, generate_titles, seed
from reelscale.demo.videos import DEMO_VIDEOS, demo_video_titles
from tests.conftest import make_settings, started
from tests.support import bearer, login


def test_generation_is_deterministic_and_varied() -> None:
    first, second = generate_titles(), generate_titles()
    assert [t.model_dump() for t in first] == [t.model_dump() for t in second]
    assert len(first) == TITLE_COUNT >= 200
    assert len({t.name for t in first}) == len(first)
    genres = Counter(g for t in first for g in t.genres)
    assert len(genres) >= 12
    assert len({t.original_language for t in first}) >= 8
    assert {t.kind for t in first} == {"movie", "series"}
    assert len({t.maturity_rating for t in first}) >= 8
    assert min(t.release_year for t in first) < 1990 < max(t.release_year for t in first)
    assert sum(level_of(t.maturity_rating) <= KIDS_DEFAULT_LEVEL for t in first) >= 20
    assert all(len(t.credits) >= 5 for t in first)
    series = [t for t in first if t.kind == "series"]
    assert all(s.seasons and all(season.episodes for season in s.seasons) for s in series)


@pytest.mark.asyncio
async def test_seed_once_then_reuse_and_sign_in(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    # Videos are left out here (minutes of ffmpeg); test_demo_videos_pick_fitting_titles and
    # the media tests cover that path.
    first = await seed(settings, videos=False)
    assert (first.titles, first.members) == (TITLE_COUNT, len(CREDENTIALS))
    again = await seed(settings, videos=False)
    assert (again.titles, again.members) == (0, 0)
    async with started(settings) as h:
        email, password, _ = CREDENTIALS[0]
        token = (await login(h.client, email, password))["access_token"]
        profiles = (await h.client.get("/v1/profiles", headers=bearer(token))).json()
        kids = [p for p in profiles if p["is_kids"]]
        assert len(kids) == 1
        assert any(p["has_pin"] for p in profiles)
        picked = await h.client.post(f"/v1/profiles/{kids[0]['id']}/select", headers=bearer(token))
        kid_token = picked.json()["access_token"]
        everything = (await h.client.get("/v1/catalog/titles", headers=bearer(token))).json()
        for_kids = (await h.client.get("/v1/catalog/titles", headers=bearer(kid_token))).json()
        assert 0 < for_kids["total"] < everything["total"] <= TITLE_COUNT
        editor = await login(h.client, CREDENTIALS[1][0], CREDENTIALS[1][1])
        assert "catalog:write" in editor["scope"].split()


def test_demo_videos_pick_fitting_titles() -> None:
    picked = demo_video_titles()
    assert len(picked) == len(DEMO_VIDEOS) == len({title_id for title_id, _, _ in picked})
    titles = {demo_id("title", n): t for n, t in enumerate(generate_titles())}
    for title_id, name, video in picked:
        title = titles[title_id]
        assert title.name == name
        assert title.genres[0] == video.genre
        assert title.kind == "movie"
        assert title.available_from is None
    kids = [titles[t] for t, _, v in picked if v.genre == "Kids"]
    assert kids
    assert level_of(kids[0].maturity_rating) <= KIDS_DEFAULT_LEVEL  # the kids profile can play it
    assert len({v.spec.look for _, _, v in picked}) == len(picked)  # each looks different
