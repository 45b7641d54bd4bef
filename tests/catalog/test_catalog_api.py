"""The catalog over HTTP: editor writes, genre browsing, typo-tolerant search, title pages,
maturity ceilings, availability windows, seasons and deletes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from reelscale.catalog.models import Season
from tests.catalog.builders import TITLES, create, movie, names, search, series
from tests.conftest import Harness
from tests.support import bearer, editor_token, member_token, profile_token

pytestmark = pytest.mark.asyncio


async def test_editor_creates_a_series_with_everything(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    body = series(
        "The Lighthouse Keepers",
        synopsis="Two keepers, one storm.",
        maturity_rating="TV-14",
        genres=["Drama", "Mystery"],
        credits=[
            {"name": "Ana Ortiz", "role": "actor", "character": "Mara"},
            {"name": "Ben Cole", "character": "Tom"},  # role defaults to actor
            {"name": "Cy Park", "role": "director"},
            {"name": "Dee Wong", "role": "writer"},
        ],
        audio_languages=["en", "es"],
        subtitle_languages=["en", "fr", "pt-BR"],
        artwork=[{"kind": "poster", "url": "https://cdn.example.com/p.jpg"}],
        popularity=12.5,
        seasons=[
            {
                "number": 1,
                "episodes": [
                    {"number": 1, "name": "Fog", "runtime_minutes": 50},
                    {"number": 2, "name": "Gale", "runtime_minutes": 48},
                ],
            },
            {"number": 2, "name": "The Return", "episodes": []},
        ],
    )
    out = await create(harness, editor, body)
    assert out["kind"] == "series"
    assert out["name"] == "The Lighthouse Keepers"
    assert out["maturity_rating"] == "TV-14"
    assert out["maturity_level"] == 14
    assert out["genres"] == [
        {"slug": "drama", "name": "Drama"},
        {"slug": "mystery", "name": "Mystery"},
    ]
    assert [(c["name"], c["role"], c["character"]) for c in out["cast"]] == [
        ("Ana Ortiz", "actor", "Mara"),
        ("Ben Cole", "actor", "Tom"),
    ]
    assert [(c["name"], c["role"]) for c in out["crew"]] == [
        ("Cy Park", "director"),
        ("Dee Wong", "writer"),
    ]
    assert sorted(out["audio_languages"]) == ["en", "es"]
    assert sorted(out["subtitle_languages"]) == ["en", "fr", "pt-BR"]
    assert out["artwork"] == [{"kind": "poster", "url": "https://cdn.example.com/p.jpg"}]
    assert out["popularity"] == 12.5
    assert out["runtime_minutes"] is None
    assert [(s["number"], s["name"]) for s in out["seasons"]] == [
        (1, "Season 1"),
        (2, "The Return"),
    ]
    assert [(e["number"], e["name"]) for e in out["seasons"][0]["episodes"]] == [
        (1, "Fog"),
        (2, "Gale"),
    ]
    assert out["created_at"].startswith("2026-01-01T00:00:00")
    # The page reads back exactly what the write returned.
    page = await harness.client.get(f"{TITLES}/{out['id']}", headers=bearer(editor))
    assert page.status_code == 200
    assert page.json() == out
    assert "catalog.title.created" in harness.event_types()


async def test_writes_need_an_editor(harness: Harness) -> None:
    c = harness.client
    editor = await editor_token(c, harness.app)
    member = await member_token(c)
    body = movie("Forbidden Planet")
    assert (await c.post(TITLES, json=body, headers=bearer(member))).status_code == 403
    anonymous = await c.post(TITLES, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert (await c.get(TITLES)).status_code == 401  # reads need a token too
    harness.clock.advance(16 * 60)
    expired = await c.post(TITLES, json=body, headers=bearer(editor))
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    fresh = await editor_token(c, harness.app)
    assert await names(harness, fresh) == []


async def test_browse_a_genre_a_page_at_a_time(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    member = await member_token(harness.client)
    for rank in range(7):
        await create(harness, editor, movie(f"Laugh {rank}", genres=["Comedy"], popularity=rank))
    await create(harness, editor, movie("Grim", genres=["Horror", "Comedy"], popularity=3.5))
    await create(harness, editor, movie("Scream", genres=["Horror"], popularity=1))

    seen: list[str] = []
    offset: int | None = 0
    pages = []
    while offset is not None:
        response = await harness.client.get(
            "/v1/catalog/genres/comedy/titles",
            params={"limit": 3, "offset": offset},
            headers=bearer(member),
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == 8
        assert page["limit"] == 3
        assert page["offset"] == offset
        pages.append(len(page["items"]))
        seen += [item["name"] for item in page["items"]]
        offset = page["next_offset"]
    assert pages == [3, 3, 2]
    assert seen == [
        "Laugh 6",
        "Laugh 5",
        "Laugh 4",
        "Grim",
        "Laugh 3",
        "Laugh 2",
        "Laugh 1",
        "Laugh 0",
    ]
    past_end = await harness.client.get(
        "/v1/catalog/genres/comedy/titles", params={"offset": 50}, headers=bearer(member)
    )
    assert past_end.json() == {
        "items": [],
        "total": 8,
        "limit": 20,
        "offset": 50,
        "next_offset": None,
    }
    assert await names(harness, member, genre="horror") == ["Grim", "Scream"]
    unknown = await harness.client.get("/v1/catalog/genres/western/titles", headers=bearer(member))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    genres = (await harness.client.get("/v1/catalog/genres", headers=bearer(member))).json()
    assert genres == [
        {"slug": "comedy", "name": "Comedy", "titles": 8},
        {"slug": "horror", "name": "Horror", "titles": 2},
    ]


async def test_search_tolerates_typos(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    member = await member_token(harness.client)
    space = await create(
        harness,
        editor,
        movie("Interstellar Voyage", credits=[{"name": "Matthew Brightwater"}], genres=["Sci-Fi"]),
    )
    laughs = await create(harness, editor, movie("Paper Moon", genres=["Comedy"]))

    by_title = await search(harness, member, "intersteller")
    assert by_title[0]["title"]["id"] == space["id"]
    assert by_title[0]["matched"] == "title"
    assert by_title[0]["matched_text"] == "Interstellar Voyage"

    by_cast = await search(harness, member, "Mathew Brightwatter")
    assert by_cast[0]["title"]["id"] == space["id"]
    assert (by_cast[0]["matched"], by_cast[0]["matched_text"]) == ("cast", "Matthew Brightwater")

    by_genre = await search(harness, member, "comdy")
    assert [hit["title"]["id"] for hit in by_genre] == [laughs["id"]]
    assert (by_genre[0]["matched"], by_genre[0]["matched_text"]) == ("genre", "Comedy")
    assert by_genre[0]["title"]["genres"] == ["Comedy"]

    assert await search(harness, member, "qxzvkjw") == []
    assert await search(harness, member, "x") == []  # too short to mean anything


async def test_title_page(harness: Harness) -> None:
    member = await member_token(harness.client)
    editor = await editor_token(harness.client, harness.app)
    made = await create(harness, editor, movie("Arrival Hall", synopsis="A" * 300))
    page = await harness.client.get(f"{TITLES}/{made['id']}", headers=bearer(member))
    assert page.status_code == 200
    assert page.json()["synopsis"] == "A" * 300  # the page is whole; cards are trimmed
    card = (await harness.client.get(TITLES, headers=bearer(member))).json()["items"][0]
    assert card["synopsis"] == "A" * 237 + "..."
    missing = await harness.client.get(
        f"{TITLES}/00000000-0000-4000-8000-000000000000", headers=bearer(member)
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    malformed = await harness.client.get(f"{TITLES}/not-a-uuid", headers=bearer(member))
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"


async def test_kids_profile_sees_only_suitable_titles(harness: Harness) -> None:
    c = harness.client
    editor = await editor_token(c, harness.app)
    account = await member_token(c)
    _, kid = await profile_token(c, account, "Kid", is_kids=True)
    _, adult = await profile_token(c, account, "Grown-up")
    grim = await create(
        harness, editor, movie("Midnight Butcher", maturity_rating="R", genres=["Horror"])
    )
    tots = await create(
        harness, editor, series("Bouncy Bears", maturity_rating="TV-Y", genres=["Horror"])
    )

    assert await names(harness, kid) == ["Bouncy Bears"]
    assert await names(harness, kid, "/v1/catalog/genres/horror/titles") == ["Bouncy Bears"]
    assert await search(harness, kid, "midnight butcher") == []
    assert [h["title"]["id"] for h in await search(harness, kid, "bouncy bears")] == [tots["id"]]
    assert (await c.get(f"{TITLES}/{grim['id']}", headers=bearer(kid))).status_code == 404
    assert (await c.get(f"{TITLES}/{tots['id']}", headers=bearer(kid))).status_code == 200
    kid_genres = (await c.get("/v1/catalog/genres", headers=bearer(kid))).json()
    assert kid_genres == [{"slug": "horror", "name": "Horror", "titles": 1}]

    assert sorted(await names(harness, adult)) == ["Bouncy Bears", "Midnight Butcher"]
    assert (await c.get(f"{TITLES}/{grim['id']}", headers=bearer(adult))).status_code == 200
    assert [h["title"]["id"] for h in await search(harness, adult, "midnite butcher")] == [
        grim["id"]
    ]


async def test_availability_windows(harness: Harness) -> None:
    c = harness.client
    editor = await editor_token(c, harness.app)
    member = await member_token(c)
    now = harness.clock.now()
    soon = await create(
        harness,
        editor,
        movie("Coming Soon", available_from=(now + timedelta(minutes=5)).isoformat()),
    )
    await create(
        harness, editor, movie("Long Gone", available_until=(now - timedelta(days=1)).isoformat())
    )
    await create(
        harness,
        editor,
        movie(
            "Now Showing",
            available_from=(now - timedelta(days=1)).isoformat(),
            available_until=(now + timedelta(minutes=10)).isoformat(),
        ),
    )
    assert soon["available_from"].startswith("2026-01-01T00:05:00")
    assert await names(harness, member) == ["Now Showing"]
    assert await search(harness, member, "coming soon") == []
    assert (await c.get(f"{TITLES}/{soon['id']}", headers=bearer(member))).status_code == 404
    assert sorted(await names(harness, editor)) == ["Coming Soon", "Long Gone", "Now Showing"]
    assert (await c.get(f"{TITLES}/{soon['id']}", headers=bearer(editor))).status_code == 200

    harness.clock.advance(6 * 60)  # past the start; tokens (15 minutes) are still good
    assert sorted(await names(harness, member)) == ["Coming Soon", "Now Showing"]
    assert (await c.get(f"{TITLES}/{soon['id']}", headers=bearer(member))).status_code == 200
    assert [h["title"]["name"] for h in await search(harness, member, "coming soon")] == [
        "Coming Soon"
    ]
    harness.clock.advance(4 * 60)  # exactly at Now Showing's end: the end is exclusive
    assert await names(harness, member) == ["Coming Soon"]


async def test_patch_replaces_lists_and_keeps_the_rest(harness: Harness) -> None:
    c = harness.client
    editor = await editor_token(c, harness.app)
    made = await create(
        harness,
        editor,
        movie(
            "Draft Cut",
            genres=["Drama", "Romance"],
            credits=[{"name": "Ana Ortiz"}, {"name": "Cy Park", "role": "director"}],
            audio_languages=["en", "fr"],
            subtitle_languages=["en"],
            artwork=[{"kind": "poster", "url": "/art/old.jpg"}],
        ),
    )
    harness.clock.advance(60)
    response = await c.patch(
        f"{TITLES}/{made['id']}",
        json={
            "name": "Final Cut",
            "maturity_rating": "R",
            "genres": ["Thriller"],
            "credits": [{"name": "Eve Stone", "character": "Lead"}],
            "audio_languages": ["en", "de"],
            "artwork": [],
        },
        headers=bearer(editor),
    )
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["name"] == "Final Cut"
    assert (out["maturity_rating"], out["maturity_level"]) == ("R", 17)
    assert out["genres"] == [{"slug": "thriller", "name": "Thriller"}]
    assert [(p["name"], p["character"]) for p in out["cast"]] == [("Eve Stone", "Lead")]
    assert out["crew"] == []
    assert out["artwork"] == []
    # Languages come back in no promised order.
    assert sorted(out["audio_languages"]) == ["de", "en"]
    assert out["subtitle_languages"] == ["en"]  # not given, so kept
    assert (out["release_year"], out["runtime_minutes"]) == (2020, 100)
    assert out["created_at"] == made["created_at"]
    assert out["updated_at"] > made["updated_at"]
    again = await c.get(f"{TITLES}/{made['id']}", headers=bearer(editor))
    assert again.json() == out
    # Only subtitles given: audio rows are rebuilt with the same keys and must survive.
    subs = await c.patch(
        f"{TITLES}/{made['id']}", json={"subtitle_languages": ["es"]}, headers=bearer(editor)
    )
    assert subs.status_code == 200, subs.text
    assert sorted(subs.json()["audio_languages"]) == ["de", "en"]
    assert subs.json()["subtitle_languages"] == ["es"]
    genres = (await c.get("/v1/catalog/genres", headers=bearer(editor))).json()
    assert [g["slug"] for g in genres] == ["thriller"]
    missing = await c.patch(
        f"{TITLES}/00000000-0000-4000-8000-000000000000", json={"name": "X"}, headers=bearer(editor)
    )
    assert missing.status_code == 404


async def test_seasons_and_delete(harness: Harness) -> None:
    c = harness.client
    editor = await editor_token(c, harness.app)
    show = await create(harness, editor, series("Night Shift", seasons=[{"number": 1}]))
    film = await create(harness, editor, movie("Day Trip"))
    season = {"number": 2, "episodes": [{"number": 1, "name": "Back", "runtime_minutes": 42}]}
    added = await c.post(f"{TITLES}/{show['id']}/seasons", json=season, headers=bearer(editor))
    assert added.status_code == 201, added.text
    assert [s["number"] for s in added.json()["seasons"]] == [1, 2]
    assert added.json()["seasons"][1]["episodes"][0]["name"] == "Back"
    dup = await c.post(f"{TITLES}/{show['id']}/seasons", json=season, headers=bearer(editor))
    assert dup.status_code == 409
    assert dup.headers["content-type"] == "application/problem+json"
    to_movie = await c.post(f"{TITLES}/{film['id']}/seasons", json=season, headers=bearer(editor))
    assert to_movie.status_code == 409
    member = await member_token(c)
    denied = await c.post(f"{TITLES}/{show['id']}/seasons", json=season, headers=bearer(member))
    assert denied.status_code == 403
    assert (await c.delete(f"{TITLES}/{show['id']}", headers=bearer(member))).status_code == 403

    assert (await c.delete(f"{TITLES}/{show['id']}", headers=bearer(editor))).status_code == 204
    assert (await c.get(f"{TITLES}/{show['id']}", headers=bearer(editor))).status_code == 404
    assert (await c.delete(f"{TITLES}/{show['id']}", headers=bearer(editor))).status_code == 404
    assert await names(harness, editor) == ["Day Trip"]
    async with harness.app.state.platform.db.session() as db_session:
        assert await db_session.scalar(select(func.count()).select_from(Season)) == 0
    assert "catalog.title.deleted" in harness.event_types()
