"""Hostile and malformed input to accounts: a clear 4xx, and nothing written."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.support import PASSWORD, bearer, member_token

pytestmark = pytest.mark.asyncio

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"email": "a@example.com", "password": PASSWORD, "is_admin": True}, 422),  # unknown field
        ({"email": "a@example.com", "password": 12345678901}, 422),  # wrong type
        ({"email": "not-an-email", "password": PASSWORD}, 422),
        ({"email": "a" * 300 + "@example.com", "password": PASSWORD}, 422),
        ({"email": "a@example.com", "password": "short"}, 422),
        ({"email": "a@example.com", "password": "p" * 10_000}, 422),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": "x" * 500}, 422),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": "bell\x07"}, 422),
        ({"email": "'; DROP TABLE accounts_members; --@example.com", "password": PASSWORD}, 422),
        ([], 422),
        ("just a string", 422),
    ],
)
async def test_signup_refuses_bad_bodies(harness: Harness, body: object, status: int) -> None:
    response = await harness.client.post("/v1/auth/signup", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    # nothing was created: the address is still free
    ok = await harness.client.post(
        "/v1/auth/signup", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert ok.status_code == 201


async def test_malformed_json_and_wrong_content_type(harness: Harness) -> None:
    c = harness.client
    broken = await c.post(
        "/v1/auth/login", content=b'{"email": "a@', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.headers["content-type"] == PROBLEM
    form = await c.post("/v1/auth/login", data={"email": "a@example.com", "password": "x"})
    assert form.status_code == 422
    binary = await c.post(
        "/v1/auth/signup", content=bytes(range(256)), headers={"content-type": "application/json"}
    )
    assert binary.status_code == 422


async def test_hostile_profile_names_are_just_names(harness: Harness) -> None:
    token = await member_token(harness.client)
    for name in ("../../etc/passwd", "'; DROP TABLE accounts_profiles; --", "Zoë 🎬"):
        created = await harness.client.post(
            "/v1/profiles", json={"name": name}, headers=bearer(token)
        )
        assert created.status_code == 201, created.text
        assert created.json()["name"] == name
    names = [
        p["name"] for p in (await harness.client.get("/v1/profiles", headers=bearer(token))).json()
    ]
    assert len(names) == 3
    for bad in (
        {"name": ""},
        {"name": "x" * 51},
        {"name": "tab\there"},
        {"name": "A", "pin": "123"},
        {"name": "A", "avatar": "<svg>"},
        {"name": "A", "language": "english!"},
    ):
        response = await harness.client.post("/v1/profiles", json=bad, headers=bearer(token))
        assert response.status_code == 422, bad
    assert len((await harness.client.get("/v1/profiles", headers=bearer(token))).json()) == 3


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer",
        b"Bearer " + b"a" * 5000,
        b"Basic dXNlcjpwYXNz",
        b"Bearer a.b",
        b"Bearer \xe9.\xe9.\xe9",
    ],
)
async def test_garbage_authorization_is_401(harness: Harness, header: bytes) -> None:
    response = await harness.client.get("/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


async def test_bad_ids_and_refresh_tokens(harness: Harness) -> None:
    c = harness.client
    token = await member_token(c)
    assert (await c.get("/v1/profiles/not-a-uuid", headers=bearer(token))).status_code == 422
    assert (await c.post("/v1/auth/refresh", json={"refresh_token": "x" * 300})).status_code == 422
    assert (await c.post("/v1/auth/refresh", json={"refresh_token": "forged"})).status_code == 401
