"""Profiles: at most five, kids ceilings, PINs, switching into one."""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest

from tests.conftest import Harness
from tests.support import PASSWORD, bearer, login, member_token, profile_token, signup

pytestmark = pytest.mark.asyncio


async def test_kids_and_adult_profiles(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    kid_id, kid_token = await profile_token(c, token, "Mia", is_kids=True)
    adult_id, adult_token = await profile_token(c, token, "Jo")
    listed = (await c.get("/v1/profiles", headers=bearer(token))).json()
    assert [p["name"] for p in listed] == ["Mia", "Jo"]
    kid = next(p for p in listed if p["id"] == kid_id)
    assert kid["is_kids"]
    assert kid["max_maturity"] == 7
    claims = jwt.decode(kid_token, options={"verify_signature": False})
    assert claims["profile"] == {"id": kid_id, "kids": True, "max_maturity": 7}
    # A kids profile's token cannot manage the account's profiles.
    assert "profiles:write" not in claims["scope"].split()
    denied = await c.post("/v1/profiles", json={"name": "Sneaky"}, headers=bearer(kid_token))
    assert denied.status_code == 403
    adult = jwt.decode(adult_token, options={"verify_signature": False})["profile"]
    assert adult == {"id": adult_id, "kids": False, "max_maturity": 18}


async def test_kids_ceiling_is_capped(harness: Harness) -> None:
    token = await member_token(harness.client)
    response = await harness.client.post(
        "/v1/profiles",
        json={"name": "Teen", "is_kids": True, "max_maturity": 17},
        headers=bearer(token),
    )
    assert response.status_code == 400
    assert "at most 12" in response.json()["detail"]


async def test_at_most_five_profiles_even_concurrently(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    responses = await asyncio.gather(
        *(c.post("/v1/profiles", json={"name": f"P{i}"}, headers=bearer(token)) for i in range(9))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 5 + [409] * 4
    assert len((await c.get("/v1/profiles", headers=bearer(token))).json()) == 5
    # Deleting one frees a place.
    first = (await c.get("/v1/profiles", headers=bearer(token))).json()[0]["id"]
    assert (await c.delete(f"/v1/profiles/{first}", headers=bearer(token))).status_code == 204
    again = await c.post("/v1/profiles", json={"name": "Late"}, headers=bearer(token))
    assert again.status_code == 201


async def test_duplicate_profile_name_is_409(harness: Harness) -> None:
    token = await member_token(harness.client)
    assert (
        await harness.client.post("/v1/profiles", json={"name": "Ann"}, headers=bearer(token))
    ).status_code == 201
    dup = await harness.client.post("/v1/profiles", json={"name": "Ann"}, headers=bearer(token))
    assert dup.status_code == 409


async def test_pin_guards_profile(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    created = await c.post(
        "/v1/profiles", json={"name": "Locked", "pin": "4321"}, headers=bearer(token)
    )
    assert created.json()["has_pin"] is True
    pid = created.json()["id"]
    missing = await c.post(f"/v1/profiles/{pid}/select", headers=bearer(token))
    assert missing.status_code == 403
    assert missing.json()["pin_required"] is True
    wrong = await c.post(f"/v1/profiles/{pid}/select", json={"pin": "0000"}, headers=bearer(token))
    assert wrong.status_code == 403
    right = await c.post(f"/v1/profiles/{pid}/select", json={"pin": "4321"}, headers=bearer(token))
    assert right.status_code == 200
    assert "auth.pin.failed" in harness.event_types()
    bad_format = await c.post(
        f"/v1/profiles/{pid}/select", json={"pin": "12a4"}, headers=bearer(token)
    )
    assert bad_format.status_code == 422


async def test_pin_guessing_is_throttled(harness: Harness) -> None:
    c = harness.client
    await signup(c, "pins@example.com")
    token = (await login(c, "pins@example.com"))["access_token"]
    pid = (
        await c.post("/v1/profiles", json={"name": "Vault", "pin": "9876"}, headers=bearer(token))
    ).json()["id"]

    async def attempt(pin: str) -> httpx.Response:
        return await c.post(f"/v1/profiles/{pid}/select", json={"pin": pin}, headers=bearer(token))

    codes = [(await attempt(f"{n:04d}")).status_code for n in range(6)]
    assert codes == [403] * 5 + [429]
    locked = await attempt("9876")  # even the right PIN waits out the window
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    harness.clock.advance(15 * 60 + 1)  # the window passes: not locked forever
    token = (await login(c, "pins@example.com"))["access_token"]
    assert (await attempt("9876")).status_code == 200


async def test_update_and_remove_pin(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    pid = (
        await c.post("/v1/profiles", json={"name": "Old", "pin": "1111"}, headers=bearer(token))
    ).json()["id"]
    updated = await c.patch(
        f"/v1/profiles/{pid}",
        json={"name": "New", "remove_pin": True, "avatar": "teal", "password": PASSWORD},
        headers=bearer(token),
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "New"
    assert updated.json()["has_pin"] is False
    both = await c.patch(
        f"/v1/profiles/{pid}", json={"pin": "2222", "remove_pin": True}, headers=bearer(token)
    )
    assert both.status_code == 400


async def test_profiles_are_private_to_their_member(harness: Harness) -> None:
    c = harness.client
    alice = await member_token(c)
    bob = await member_token(c)
    pid = (await c.post("/v1/profiles", json={"name": "Alice"}, headers=bearer(alice))).json()["id"]
    assert (await c.get(f"/v1/profiles/{pid}", headers=bearer(bob))).status_code == 404
    assert (await c.post(f"/v1/profiles/{pid}/select", headers=bearer(bob))).status_code == 404
    assert (await c.delete(f"/v1/profiles/{pid}", headers=bearer(bob))).status_code == 404


async def test_kids_profile_cannot_walk_out_without_a_grown_up(harness: Harness) -> None:
    c = harness.client
    await signup(c, "family@example.com")
    account = (await login(c, "family@example.com"))["access_token"]
    _kid_id, kid_token = await profile_token(c, account, "Mia", is_kids=True)
    open_id = (
        await c.post("/v1/profiles", json={"name": "Parent"}, headers=bearer(account))
    ).json()["id"]
    locked_id = (
        await c.post(
            "/v1/profiles", json={"name": "Locked", "pin": "2468"}, headers=bearer(account)
        )
    ).json()["id"]

    walk_out = await c.post(f"/v1/profiles/{open_id}/select", headers=bearer(kid_token))
    assert walk_out.status_code == 403
    assert walk_out.json()["password_required"] is True
    wrong = await c.post(
        f"/v1/profiles/{open_id}/select",
        json={"password": "not it at all"},
        headers=bearer(kid_token),
    )
    assert wrong.status_code == 403
    with_password = await c.post(
        f"/v1/profiles/{open_id}/select", json={"password": PASSWORD}, headers=bearer(kid_token)
    )
    assert with_password.status_code == 200
    with_pin = await c.post(
        f"/v1/profiles/{locked_id}/select", json={"pin": "2468"}, headers=bearer(kid_token)
    )
    assert with_pin.status_code == 200
    assert "auth.password.failed" in harness.event_types()


async def test_changing_a_lock_needs_the_password(harness: Harness) -> None:
    c = harness.client
    await signup(c, "locks@example.com")
    token = (await login(c, "locks@example.com"))["access_token"]
    pid = (
        await c.post("/v1/profiles", json={"name": "Sam", "pin": "1357"}, headers=bearer(token))
    ).json()["id"]
    no_password = await c.patch(
        f"/v1/profiles/{pid}", json={"remove_pin": True}, headers=bearer(token)
    )
    assert no_password.status_code == 403
    wrong = await c.patch(
        f"/v1/profiles/{pid}",
        json={"pin": "0000", "password": "wrong password"},
        headers=bearer(token),
    )
    assert wrong.status_code == 403
    profile = (await c.get(f"/v1/profiles/{pid}", headers=bearer(token))).json()
    assert profile["has_pin"] is True
    assert (
        await c.post(f"/v1/profiles/{pid}/select", json={"pin": "1357"}, headers=bearer(token))
    ).status_code == 200
    ok = await c.patch(
        f"/v1/profiles/{pid}",
        json={"remove_pin": True, "password": PASSWORD},
        headers=bearer(token),
    )
    assert ok.status_code == 200
    assert ok.json()["has_pin"] is False


async def test_deleting_a_profile_ends_sessions_inside_it(harness: Harness) -> None:
    c = harness.client
    await signup(c, "gone@example.com")
    tokens = await login(c, "gone@example.com")
    kid_id, kid_token = await profile_token(c, tokens["access_token"], "Kid", is_kids=True)
    deleted = await c.delete(f"/v1/profiles/{kid_id}", headers=bearer(tokens["access_token"]))
    assert deleted.status_code == 204
    # The device left in the kids profile does not fall back to an account-wide token.
    refreshed = await c.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    assert (await c.get("/v1/catalog/genres", headers=bearer(kid_token))).status_code == 401
