"""Hostile and malformed input to the catalog: every refusal is a 4xx problem+json, never a
5xx, and a refused write leaves nothing behind. Odd but valid text is stored literally.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.catalog.builders import TITLES, create, movie, search, series
from tests.conftest import Harness
from tests.support import bearer, editor_token

pytestmark = pytest.mark.asyncio

PROBLEM = "application/problem+json"
EPISODE = {"name": "Pilot", "runtime_minutes": 30}


def assert_problem(response: Any, status: int) -> None:
    assert problem_status(response) == status, response.text


def problem_status(response: Any) -> int | str:
    """The status if the response is a well-formed problem+json, else what is wrong with it."""
    if response.headers.get("content-type") != PROBLEM:
        return f"{response.status_code} with content-type {response.headers.get('content-type')}"
    body = response.json()
    if body.get("status") != response.status_code or not body.get("title"):
        return f"{response.status_code} with a malformed problem body"
    return int(response.status_code)


async def assert_nothing_written(harness: Harness, token: str) -> None:
    titles = await harness.client.get(TITLES, headers=bearer(token))
    assert titles.status_code == 200
    assert titles.json()["total"] == 0
    assert titles.json()["items"] == []
    genres = await harness.client.get("/v1/catalog/genres", headers=bearer(token))
    assert genres.json() == []


BAD_BODIES: dict[str, dict[str, Any]] = {
    "unknown field": movie("Extra", colour="red"),
    "unknown nested field": movie("Nested", credits=[{"name": "A", "salary": 1}]),
    "name is a number": movie("Num") | {"name": 123},
    "year is text": movie("Year", release_year="nineteen"),
    "genres not a list": movie("Genres", genres="Drama"),
    "unknown kind": movie("Pod", kind="podcast"),
    "unknown rating": movie("Rated", maturity_rating="XXX"),
    "unknown role": movie("Role", credits=[{"name": "A", "role": "gaffer"}]),
    "bad language": movie("Lang", original_language="English"),
    "script url": movie("Art", artwork=[{"kind": "poster", "url": "javascript:alert(1)"}]),
    "negative popularity": movie("Pop", popularity=-1),
    "huge name": movie("x" * 10_000),
    "blank name": movie("   "),
    "huge synopsis": movie("Syn", synopsis="s" * 4001),
    "too many genres": movie("Many", genres=[f"G{i}" for i in range(11)]),
    "genre with punctuation": movie("Punct", genres=["Drama; DROP TABLE catalog_genres"]),
    "movie with seasons": movie("Film", seasons=[{"number": 1}]),
    "duplicate seasons": series("Dup", seasons=[{"number": 1}, {"number": 1}]),
    "duplicate episodes": series(
        "Eps", seasons=[{"number": 1, "episodes": [{"number": 1, **EPISODE}] * 2}]
    ),
    "episode without runtime": series(
        "Run", seasons=[{"number": 1, "episodes": [{"number": 1, "name": "E"}]}]
    ),
    "window ends before it starts": movie(
        "Window",
        available_from="2026-02-01T00:00:00Z",
        available_until="2026-01-15T00:00:00Z",
    ),
    "empty window": movie(
        "Empty", available_from="2026-02-01T00:00:00Z", available_until="2026-02-01T00:00:00Z"
    ),
    "naive datetime": movie("Naive", available_from="2026-02-01T00:00:00"),
    "not a datetime": movie("When", available_until="next tuesday"),
}


async def test_invalid_bodies_are_422_and_write_nothing(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    outcomes = {}
    for case, body in BAD_BODIES.items():
        response = await harness.client.post(TITLES, json=body, headers=bearer(editor))
        outcomes[case] = problem_status(response)
        if outcomes[case] == 422:
            errors = response.json()["errors"]
            assert errors, case
            assert all({"loc", "msg", "type"} <= set(e) for e in errors), case
            assert len(response.text) < 20_000, case  # a 10,000-character input is not echoed
    assert {case: got for case, got in outcomes.items() if got != 422} == {}
    await assert_nothing_written(harness, editor)


CONTROLS = ["\x00", "\x07", "\x1b[31m", "\n", "\r", "\x7f"]


def with_text(where: str, text: str) -> dict[str, Any]:
    episode = {"number": 1, **EPISODE, "name": text}
    return {
        "title name": movie(text),
        "person name": movie("Fine", credits=[{"name": text}]),
        "character": movie("Fine", credits=[{"name": "Ann", "character": text}]),
        "season name": series("Fine", seasons=[{"number": 1, "name": text}]),
        "episode name": series("Fine", seasons=[{"number": 1, "episodes": [episode]}]),
    }[where]


async def test_control_characters_are_refused(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    outcomes = {}
    for where in ("title name", "person name", "character", "season name", "episode name"):
        for control in CONTROLS:
            body = with_text(where, f"Bad{control}Name")
            response = await harness.client.post(TITLES, json=body, headers=bearer(editor))
            outcomes[where, control] = problem_status(response)
    assert {key: got for key, got in outcomes.items() if got != 422} == {}
    await assert_nothing_written(harness, editor)


async def test_c1_control_characters_are_refused(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    response = await harness.client.post(
        TITLES, json=movie("Bad\x9b31mName"), headers=bearer(editor)
    )
    assert_problem(response, 422)


async def test_malformed_json_is_422(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    headers = {**bearer(editor), "content-type": "application/json"}
    for raw in (b'{"kind": "movie", "name": ', b"not json", b"", b"[]", b'"movie"', b"\xff\xfe"):
        response = await harness.client.post(TITLES, content=raw, headers=headers)
        assert_problem(response, 422)
    form = await harness.client.post(TITLES, data={"kind": "movie"}, headers=bearer(editor))
    assert_problem(form, 422)
    await assert_nothing_written(harness, editor)


async def test_oversized_bodies_are_413(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    big = b'{"kind": "movie", "name": "' + b"a" * (1024 * 1024) + b'"}'
    headers = {**bearer(editor), "content-type": "application/json"}
    declared = await harness.client.post(TITLES, content=big, headers=headers)
    assert_problem(declared, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await harness.client.post(TITLES, content=chunks(), headers=headers)
    assert_problem(streamed, 413)
    await assert_nothing_written(harness, editor)


@pytest.mark.parametrize(
    "name",
    [
        "'; DROP TABLE catalog_titles; --",
        "../../etc/passwd",
        "Robert'); DELETE FROM catalog_genres WHERE ('1'='1",
        "<script>alert(1)</script>",
        "%00%27 OR 1=1 --",
        "Amélie 東京 🎬",
    ],
)
async def test_odd_but_valid_names_are_stored_literally(harness: Harness, name: str) -> None:
    editor = await editor_token(harness.client, harness.app)
    made = await create(
        harness, editor, movie(name, genres=["Drama"], credits=[{"name": name, "character": name}])
    )
    assert made["name"] == name
    assert made["cast"][0]["name"] == name
    page = await harness.client.get(f"{TITLES}/{made['id']}", headers=bearer(editor))
    assert page.json()["name"] == name
    assert page.json()["cast"][0]["character"] == name
    # The tables still work: another write, a listing and a search all behave.
    await create(harness, editor, movie("Control Group", genres=["Drama"]))
    listed = (await harness.client.get(TITLES, headers=bearer(editor))).json()
    assert sorted(item["name"] for item in listed["items"]) == sorted([name, "Control Group"])
    hits = await search(harness, editor, name)
    assert hits[0]["title"]["id"] == made["id"]


QUERIES: list[tuple[str, dict[str, Any]]] = [
    (TITLES, {"limit": 0}),
    (TITLES, {"limit": 1000}),
    (TITLES, {"limit": -1}),
    (TITLES, {"limit": "ten"}),
    (TITLES, {"offset": -1}),
    (TITLES, {"offset": 10**7}),
    (TITLES, {"genre": "Drama!"}),
    (TITLES, {"kind": "podcast"}),
    (TITLES, {"language": "ENGLISH"}),
    ("/v1/catalog/genres/comedy/titles", {"limit": 0}),
    ("/v1/catalog/genres/comedy/titles", {"limit": 1000}),
    ("/v1/catalog/genres/Not A Slug/titles", {}),
    ("/v1/catalog/genres/" + "a" * 61 + "/titles", {}),
    ("/v1/catalog/search", {"q": "x" * 201}),
    ("/v1/catalog/search", {"q": ""}),
    ("/v1/catalog/search", {}),
    ("/v1/catalog/search", {"q": "drama", "limit": 0}),
    ("/v1/catalog/search", {"q": "drama", "limit": 1000}),
    (f"{TITLES}/1%20OR%201=1", {}),
]


async def test_bad_query_parameters_are_422(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    await create(harness, editor, movie("Comic Relief", genres=["Comedy"]))
    outcomes = {}
    for number, (path, params) in enumerate(QUERIES):
        response = await harness.client.get(path, params=params, headers=bearer(editor))
        outcomes[number, path, str(params)] = problem_status(response)
    assert {key: got for key, got in outcomes.items() if got != 422} == {}


async def test_edge_queries_that_are_fine(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    await create(harness, editor, movie("Comic Relief", genres=["Comedy"]))
    for params in ({"q": "x" * 200}, {"q": "%_'\"\\"}, {"q": "\x00"}, {"q": "   "}):
        response = await harness.client.get(
            "/v1/catalog/search", params=params, headers=bearer(editor)
        )
        assert response.status_code == 200
        assert response.json() == []
    edge = await harness.client.get(
        TITLES, params={"limit": 100, "offset": 100_000}, headers=bearer(editor)
    )
    assert edge.status_code == 200
    assert edge.json()["total"] == 1


async def test_bad_updates_change_nothing(harness: Harness) -> None:
    c = harness.client
    editor = await editor_token(c, harness.app)
    made = await create(
        harness, editor, movie("Stable", available_from="2026-03-01T00:00:00Z", genres=["Drama"])
    )
    url = f"{TITLES}/{made['id']}"
    for body in (
        {"kind": "series"},  # the kind is fixed at creation
        {"name": "x" * 10_000},
        {"genres": ["Ok", "Not;Ok"]},
        {"available_until": "2026-02-01T00:00:00"},
        {"available_from": "2026-03-01T00:00:00Z", "available_until": "2026-02-01T00:00:00Z"},
    ):
        assert_problem(await c.patch(url, json=body, headers=bearer(editor)), 422)
    # Ending before the stored start is caught against the stored value: the same 422 as above.
    clash = await c.patch(
        url, json={"available_until": "2026-02-01T00:00:00Z"}, headers=bearer(editor)
    )
    assert_problem(clash, 422)
    bad_season = {"number": 2, "episodes": [{"number": 1, **EPISODE}] * 2}
    assert_problem(await c.post(f"{url}/seasons", json=bad_season, headers=bearer(editor)), 422)
    assert (await c.get(url, headers=bearer(editor))).json() == made


async def test_null_for_a_required_field_is_422(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    made = await create(harness, editor, movie("Keep Me"))
    url = f"{TITLES}/{made['id']}"
    outcomes = {}
    for field in ("name", "synopsis", "release_year", "original_language", "popularity"):
        response = await harness.client.patch(url, json={field: None}, headers=bearer(editor))
        outcomes[field] = problem_status(response)
    assert (await harness.client.get(url, headers=bearer(editor))).json() == made
    assert {field: got for field, got in outcomes.items() if got != 422} == {}


async def test_non_latin_genres_stay_distinct(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    await create(harness, editor, movie("Смех", genres=["Комедия"]))
    drama = await create(harness, editor, movie("Слёзы", genres=["Драма"]))
    assert [g["name"] for g in drama["genres"]] == ["Драма"]


async def test_extreme_dates_and_long_genres_are_not_500s(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    for moment in ("9999-12-31T23:00:00-14:00", "0001-01-01T00:00:00+14:00"):
        response = await harness.client.post(
            TITLES, json=movie("Far Future", available_from=moment), headers=bearer(editor)
        )
        assert_problem(response, 422)
    # Casefolding doubles "ß" to "ss": the slug must still fit its column on PostgreSQL.
    long_genre = await harness.client.post(
        TITLES, json=movie("Straße", genres=["ß" * 60, "ß" * 59 + "x"]), headers=bearer(editor)
    )
    assert long_genre.status_code == 201, long_genre.text
    slugs = [g["slug"] for g in long_genre.json()["genres"]]
    assert len(set(slugs)) == 2
    assert all(len(slug) <= 60 for slug in slugs)
