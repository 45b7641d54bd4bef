"""Onboarding picks: stored per profile, bounded, private to the member, announced to recs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from reelscale.accounts.inprocess import InProcessProfiles
from reelscale.accounts.models import PickedGenre, PickedTitle
from reelscale.events.publisher import stream_for
from tests.conftest import Harness
from tests.support import bearer, login, member_token, profile_token, signup

pytestmark = pytest.mark.asyncio

PROBLEM = "application/problem+json"
T1, T2, T3 = (str(uuid.UUID(int=n)) for n in (1, 2, 3))


def picks_url(profile_id: str) -> str:
    return f"/v1/profiles/{profile_id}/picks"


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status


async def recs_row(h: Harness, profile_id: str) -> dict[str, Any]:
    rows = await InProcessProfiles(h.app.state.accounts).recs_profiles()
    return next(r.model_dump(mode="json") for r in rows if str(r.id) == profile_id)


async def test_picks_are_stored_in_order_without_repeats_and_announced(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    profile_id, _ = await profile_token(c, token, "Ana", language="pt-BR")
    empty = await c.get(picks_url(profile_id), headers=bearer(token))
    assert empty.status_code == 200
    assert empty.json() == {"profile_id": profile_id, "genres": [], "titles": []}

    body = {"genres": ["thriller", "drama", "thriller", "science-fiction"], "titles": [T2, T1, T2]}
    saved = await c.put(picks_url(profile_id), json=body, headers=bearer(token))
    assert saved.status_code == 200, saved.text
    expected = {
        "profile_id": profile_id,
        "genres": ["thriller", "drama", "science-fiction"],
        "titles": [T2, T1],
    }
    assert saved.json() == expected
    assert (await c.get(picks_url(profile_id), headers=bearer(token))).json() == expected

    # What a recs build reads: the picks with the profile's language.
    row = await recs_row(harness, profile_id)
    assert row["language"] == "pt-BR"
    assert row["picked_genres"] == expected["genres"]
    assert row["picked_titles"] == expected["titles"]

    # What recs folds in at once, without a build.
    event = next(e for e in harness.events if e.type == "profile.picks_updated")
    assert event.subject == profile_id
    assert event.data == {
        "profile_id": profile_id,
        "language": "pt-BR",
        "genres": expected["genres"],
        "titles": expected["titles"],
    }
    assert stream_for(event.type) == "platform"

    # A second save replaces the first; an empty one clears them.
    again = await c.put(
        picks_url(profile_id), json={"genres": ["comedy"], "titles": [T3]}, headers=bearer(token)
    )
    assert again.json()["genres"] == ["comedy"]
    assert again.json()["titles"] == [T3]
    cleared = await c.put(picks_url(profile_id), json={}, headers=bearer(token))
    assert cleared.json() == {"profile_id": profile_id, "genres": [], "titles": []}
    assert (await recs_row(harness, profile_id))["picked_genres"] == []
    assert harness.event_types().count("profile.picks_updated") == 3


async def test_the_limits_are_exactly_ten_genres_and_twenty_titles(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    profile_id, _ = await profile_token(c, token, "Full")
    genres = [f"genre-{n}" for n in range(10)]
    titles = [str(uuid.UUID(int=n + 1)) for n in range(20)]
    at_limit = await c.put(
        picks_url(profile_id), json={"genres": genres, "titles": titles}, headers=bearer(token)
    )
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["genres"] == genres
    assert at_limit.json()["titles"] == titles
    over = await c.put(
        picks_url(profile_id), json={"genres": [*genres, "one-more"]}, headers=bearer(token)
    )
    assert_problem(over, 422)
    over = await c.put(
        picks_url(profile_id),
        json={"titles": [*titles, str(uuid.UUID(int=99))]},
        headers=bearer(token),
    )
    assert_problem(over, 422)
    kept = (await c.get(picks_url(profile_id), headers=bearer(token))).json()
    assert kept["genres"] == genres


async def test_picks_belong_to_the_members_profiles(harness: Harness) -> None:
    c = harness.client
    owner = await member_token(c)
    stranger = await member_token(c)
    profile_id, _ = await profile_token(c, owner, "Mine")
    body = {"genres": ["drama"]}
    assert (await c.put(picks_url(profile_id), json=body, headers=bearer(owner))).is_success

    # Another member cannot tell the profile exists, let alone read or change its picks.
    assert_problem(await c.get(picks_url(profile_id), headers=bearer(stranger)), 404)
    taken = await c.put(
        picks_url(profile_id), json={"genres": ["horror"]}, headers=bearer(stranger)
    )
    assert_problem(taken, 404)
    unknown = str(uuid.uuid4())
    assert_problem(await c.get(picks_url(unknown), headers=bearer(owner)), 404)
    assert_problem(await c.put(picks_url(unknown), json=body, headers=bearer(owner)), 404)
    assert_problem(await c.get(picks_url("not-a-uuid"), headers=bearer(owner)), 422)
    assert_problem(await c.put(picks_url(profile_id), json=body), 401)
    kept = (await c.get(picks_url(profile_id), headers=bearer(owner))).json()
    assert kept["genres"] == ["drama"]


async def test_a_kids_profile_sets_its_own_picks_and_no_one_elses(harness: Harness) -> None:
    c = harness.client
    email = f"family{uuid.uuid4().hex[:8]}@example.com"
    await signup(c, email)
    account = (await login(c, email))["access_token"]
    adult_id, adult = await profile_token(c, account, "Parent")
    kid_id, kid = await profile_token(c, account, "Kid", is_kids=True)

    own = await c.put(picks_url(kid_id), json={"genres": ["kids"]}, headers=bearer(kid))
    assert own.status_code == 200, own.text
    assert (await c.get(picks_url(kid_id), headers=bearer(kid))).json()["genres"] == ["kids"]
    sibling = await c.put(picks_url(adult_id), json={"genres": ["horror"]}, headers=bearer(kid))
    assert_problem(sibling, 403)
    assert (await c.get(picks_url(adult_id), headers=bearer(adult))).json()["genres"] == []

    # Whoever manages the account's profiles may set a kid's picks for them.
    for_kid = await c.put(picks_url(kid_id), json={"genres": ["animation"]}, headers=bearer(adult))
    assert for_kid.status_code == 200
    assert (await c.get(picks_url(kid_id), headers=bearer(kid))).json()["genres"] == ["animation"]


async def test_a_narrowed_token_sets_only_its_own_profiles_picks(harness: Harness) -> None:
    c = harness.client
    email = f"narrow{uuid.uuid4().hex[:8]}@example.com"
    await signup(c, email)
    full = (await login(c, email))["access_token"]
    other_id, _ = await profile_token(c, full, "Other")
    own_id, _ = await profile_token(c, full, "Self")
    narrow = (await login(c, email, scope="profiles:read catalog:read"))["access_token"]
    selected = await c.post(f"/v1/profiles/{own_id}/select", headers=bearer(narrow))
    own = selected.json()["access_token"]
    assert "profiles:write" not in selected.json()["scope"].split()
    assert (
        await c.put(picks_url(own_id), json={"genres": ["drama"]}, headers=bearer(own))
    ).is_success
    refused = await c.put(picks_url(other_id), json={"genres": ["drama"]}, headers=bearer(own))
    assert_problem(refused, 403)


@pytest.mark.parametrize(
    "body",
    [
        {"genres": ["Drama"]},  # not lowercase
        {"genres": ["sci fi"]},
        {"genres": ["sci_fi"]},
        {"genres": ["-drama"]},
        {"genres": ["drama-"]},
        {"genres": ["sci--fi"]},
        {"genres": ["drama\n"]},
        {"genres": [""]},
        {"genres": ["a" * 61]},
        {"genres": ["../etc/passwd"]},
        {"genres": ["'; DROP TABLE accounts_picked_genres; --"]},
        {"genres": "drama"},  # not a list
        {"genres": [7]},
        {"genres": None},
        {"titles": ["not-a-uuid"]},
        {"titles": [T1[:-1]]},
        {"titles": "00000000-0000-0000-0000-000000000001"},
        {"genres": ["drama"], "profile_id": T1},  # unknown field
        [],
        "drama",
    ],
)
async def test_bad_picks_are_refused_and_nothing_changes(harness: Harness, body: object) -> None:
    c = harness.client
    token = await member_token(c)
    profile_id, _ = await profile_token(c, token, "Picky")
    before = {"genres": ["drama"], "titles": [T1]}
    assert (await c.put(picks_url(profile_id), json=before, headers=bearer(token))).is_success
    response = await c.put(picks_url(profile_id), json=body, headers=bearer(token))
    assert_problem(response, 422)
    kept = (await c.get(picks_url(profile_id), headers=bearer(token))).json()
    assert {"genres": kept["genres"], "titles": kept["titles"]} == before
    assert harness.event_types().count("profile.picks_updated") == 1


async def test_malformed_and_oversized_bodies(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    profile_id, _ = await profile_token(c, token, "Bulk")
    headers = {**bearer(token), "content-type": "application/json"}
    for raw in (b'{"genres": [', b"\xff\xfe", b""):
        assert_problem(await c.put(picks_url(profile_id), content=raw, headers=headers), 422)
    big = b'{"genres": ["' + b"a" * (1024 * 1024) + b'"]}'
    assert_problem(await c.put(picks_url(profile_id), content=big, headers=headers), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    assert_problem(await c.put(picks_url(profile_id), content=chunks(), headers=headers), 413)
    kept = (await c.get(picks_url(profile_id), headers=bearer(token))).json()
    assert kept["genres"] == []


async def test_saves_at_once_leave_one_whole_set(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    profile_id, _ = await profile_token(c, token, "Busy")
    sets = [
        {
            "genres": [f"g{n}-{k}" for k in range(10)],
            "titles": [str(uuid.UUID(int=n * 100 + k)) for k in range(1, 21)],
        }
        for n in range(6)
    ]
    responses = await asyncio.gather(
        *(c.put(picks_url(profile_id), json=body, headers=bearer(token)) for body in sets)
    )
    assert [r.status_code for r in responses] == [200] * len(sets)
    final = (await c.get(picks_url(profile_id), headers=bearer(token))).json()
    assert {"genres": final["genres"], "titles": final["titles"]} in sets


async def test_deleting_a_profile_deletes_its_picks(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    profile_id, _ = await profile_token(c, token, "Gone")
    body = {"genres": ["drama"], "titles": [T1]}
    assert (await c.put(picks_url(profile_id), json=body, headers=bearer(token))).is_success
    assert (await c.delete(f"/v1/profiles/{profile_id}", headers=bearer(token))).status_code == 204
    rows = await InProcessProfiles(harness.app.state.accounts).recs_profiles()
    assert profile_id not in {str(r.id) for r in rows}
    db = harness.app.state.platform.db
    async with db.session() as db_session:
        for table in (PickedGenre, PickedTitle):
            assert await db_session.scalar(select(func.count()).select_from(table)) == 0


async def test_a_language_change_is_announced_with_the_picks(harness: Harness) -> None:
    # Recommendations show a new profile popular titles in its language: a changed language
    # must reach them now, not at the next build.
    c = harness.client
    token = await member_token(c)
    profile_id, _ = await profile_token(c, token, "Lea", language="en")
    body = {"genres": ["drama"], "titles": [T1]}
    assert (await c.put(picks_url(profile_id), json=body, headers=bearer(token))).is_success
    url = f"/v1/profiles/{profile_id}"
    changed = await c.patch(url, json={"language": "fr"}, headers=bearer(token))
    assert changed.status_code == 200, changed.text
    announced = [e for e in harness.events if e.type == "profile.picks_updated"]
    assert len(announced) == 2
    assert announced[-1].data == {
        "profile_id": profile_id,
        "language": "fr",
        "genres": ["drama"],
        "titles": [T1],
    }
    # Renaming the profile, or "changing" to the same language, announces nothing.
    await c.patch(url, json={"name": "Léa", "language": "fr"}, headers=bearer(token))
    assert harness.event_types().count("profile.picks_updated") == 2
