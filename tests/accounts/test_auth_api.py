"""Sign-up, sign-in, tokens, refresh families, logout and key rotation, over HTTP."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from reelscale.accounts.roles import Role
from tests.conftest import Harness
from tests.support import PASSWORD, bearer, grant, login, member_token, signup

pytestmark = pytest.mark.asyncio


async def test_signup_login_and_me(harness: Harness) -> None:
    c = harness.client
    member = await signup(c, "Ada@Example.com")
    assert member["email"] == "ada@example.com"
    assert member["role"] == "member"
    tokens = await login(c, "ada@example.com")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] <= 900
    assert tokens["refresh_token"]
    assert tokens["device_token"]
    me = await c.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == member["id"]
    assert "auth.login.succeeded" in harness.event_types()


async def test_duplicate_email_is_409(harness: Harness) -> None:
    await signup(harness.client, "dup@example.com")
    again = await harness.client.post(
        "/v1/auth/signup", json={"email": "DUP@example.com", "password": PASSWORD}
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_access_token_claims(harness: Harness) -> None:
    await signup(harness.client, "claims@example.com")
    token = (await login(harness.client, "claims@example.com"))["access_token"]
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "EdDSA"
    assert header["kid"]
    assert claims["aud"] == "reelscale"
    assert claims["exp"] - claims["iat"] <= 900
    assert "catalog:read" in claims["scope"].split()
    assert "catalog:write" not in claims["scope"].split()  # least privilege for members


async def test_wrong_password_is_401_and_published(harness: Harness) -> None:
    await signup(harness.client, "wrong@example.com")
    response = await harness.client.post(
        "/v1/auth/login", json={"email": "wrong@example.com", "password": "nope-nope-nope"}
    )
    assert response.status_code == 401
    unknown = await harness.client.post(
        "/v1/auth/login", json={"email": "ghost@example.com", "password": "nope-nope-nope"}
    )
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == response.json()["detail"]  # no account enumeration
    failed = [e for e in harness.events if e.type == "auth.login.failed"]
    assert [e.data["known_account"] for e in failed] == [True, False]
    assert all(e.specversion == "1.0" and e.source and e.id for e in failed)


async def test_expired_token_is_401(harness: Harness) -> None:
    token = await member_token(harness.client)
    assert (await harness.client.get("/v1/me", headers=bearer(token))).status_code == 200
    harness.clock.advance(15 * 60 + 10)
    response = await harness.client.get("/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("mangle", ["payload", "signature", "alg-none", "garbage"])
async def test_tampered_token_is_401(harness: Harness, mangle: str) -> None:
    token = await member_token(harness.client)
    head, payload, signature = token.split(".")
    if mangle == "payload":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["scope"] += " catalog:write members:admin"
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        forged = f"{head}.{payload}.{signature}"
    elif mangle == "signature":
        forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    elif mangle == "alg-none":
        none_head = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').rstrip(b"=").decode()
        forged = f"{none_head}.{payload}."
    else:
        forged = "not.a.token"
    response = await harness.client.get("/v1/me", headers=bearer(forged))
    assert response.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_family(harness: Harness) -> None:
    c = harness.client
    await signup(c, "rot@example.com")
    first = await login(c, "rot@example.com")
    second = (
        await c.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = (
        await c.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    ).json()
    # An attacker replays the first, already spent token: the whole family dies.
    replay = await c.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    legit = await c.post("/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert legit.status_code == 401
    assert (await c.get("/v1/me", headers=bearer(third["access_token"]))).status_code == 401
    assert "auth.token.reuse_detected" in harness.event_types()
    assert "auth.session.revoked" in harness.event_types()


async def test_logout_revokes_session(harness: Harness) -> None:
    c = harness.client
    await signup(c, "out@example.com")
    tokens = await login(c, "out@example.com")
    other = await login(c, "out@example.com")  # a second device stays signed in
    response = await c.post(
        "/v1/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 204
    assert (await c.get("/v1/me", headers=bearer(tokens["access_token"]))).status_code == 401
    refresh = await c.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    assert (await c.get("/v1/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_key_rotation_keeps_old_tokens_valid(harness: Harness) -> None:
    c = harness.client
    await signup(c, "root@example.com")
    await grant(harness.app, "root@example.com", Role.ADMIN)
    old = (await login(c, "root@example.com"))["access_token"]
    old_kid = jwt.get_unverified_header(old)["kid"]
    harness.clock.advance(1)
    rotated = await c.post("/v1/admin/keys/rotate", headers=bearer(old))
    assert rotated.status_code == 200
    new_kid = rotated.json()["kid"]
    assert new_kid != old_kid
    kids = {key["kid"] for key in (await c.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= kids  # published before it signs
    still_old = (await login(c, "root@example.com"))["access_token"]
    assert jwt.get_unverified_header(still_old)["kid"] == old_kid
    harness.clock.advance(31)
    new = (await login(c, "root@example.com"))["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    kids = {key["kid"] for key in (await c.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= kids
    assert (await c.get("/v1/me", headers=bearer(old))).status_code == 200
    assert (await c.get("/v1/me", headers=bearer(new))).status_code == 200


async def test_scopes_can_be_narrowed_but_not_widened(harness: Harness) -> None:
    c = harness.client
    await signup(c, "narrow@example.com")
    narrow = await login(c, "narrow@example.com", scope="catalog:read")
    assert narrow["scope"] == "catalog:read"
    assert (await c.get("/v1/me", headers=bearer(narrow["access_token"]))).status_code == 403
    wide = await c.post(
        "/v1/auth/login",
        json={"email": "narrow@example.com", "password": PASSWORD, "scope": "members:admin"},
    )
    assert wide.status_code == 400


async def test_admin_routes_need_admin_scope(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    me = (await c.get("/v1/me", headers=bearer(token))).json()
    response = await c.put(
        f"/v1/admin/members/{me['id']}/role", json={"role": "admin"}, headers=bearer(token)
    )
    assert response.status_code == 403
    assert (await c.post("/v1/admin/keys/rotate", headers=bearer(token))).status_code == 403


async def test_scope_requests_do_not_reveal_accounts(harness: Harness) -> None:
    c = harness.client
    await signup(c, "quiet@example.com")
    probes = [
        {"email": "quiet@example.com", "password": "wrong password", "scope": "keys:admin"},
        {"email": "nobody@example.com", "password": "wrong password", "scope": "keys:admin"},
    ]
    answers = [await c.post("/v1/auth/login", json=probe) for probe in probes]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json()["detail"] == answers[1].json()["detail"]
    blank = await c.post(
        "/v1/auth/login", json={"email": "quiet@example.com", "password": PASSWORD, "scope": "  "}
    )
    assert blank.status_code == 422
