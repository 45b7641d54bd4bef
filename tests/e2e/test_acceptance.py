"""The foundation's acceptance, over real HTTP against `reelscale serve` on embedded defaults."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from reelscale.accounts.api import router as accounts_router
from reelscale.accounts.keys import KeyRing
from reelscale.catalog.api import router as catalog_router
from reelscale.core.clock import SystemClock
from reelscale.core.db import Database
from reelscale.core.health import router as health_router
from tests.conftest import TEST_SECRET
from tests.e2e.server import cli, reelscale_env, running

pytestmark = pytest.mark.slow

PASSWORD = "a long enough password"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _title(name: str, rating: str, genres: list[str], cast: list[str]) -> dict[str, Any]:
    return {
        "kind": "movie",
        "name": name,
        "synopsis": f"{name}, a test film.",
        "release_year": 2024,
        "maturity_rating": rating,
        "original_language": "en",
        "runtime_minutes": 100,
        "genres": genres,
        "credits": [{"name": person, "role": "actor"} for person in cast],
        "audio_languages": ["en", "fr"],
        "subtitle_languages": ["en", "de"],
        "artwork": [{"kind": "poster", "url": "/artwork/x/poster.svg"}],
    }


async def _mint_expired_token(data_dir: Path) -> str:
    """A token with a genuine signature that expired a minute ago."""
    db = Database(f"sqlite+aiosqlite:///{data_dir / 'reelscale.db'}")
    await db.start()
    try:
        keys = KeyRing(secret=TEST_SECRET.encode(), clock=SystemClock(), access_ttl_s=900)
        async with db.transaction() as session:
            await keys.load(db_session=session)
        now = int(time.time())
        return keys.sign(
            {
                "iss": "reelscale-accounts",
                "aud": "reelscale",
                "sub": str(uuid.uuid4()),
                "iat": now - 960,
                "exp": now - 60,
                "jti": uuid.uuid4().hex,
                "scope": "account:read",
            }
        )
    finally:
        await db.stop()


def test_newcomer_flow_over_http(tmp_path: Path) -> None:
    env = reelscale_env(tmp_path / "data")
    with (
        running(env, log=tmp_path / "server.log") as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        # An editor, bootstrapped with the CLI, writes two titles.
        assert (
            c.post(
                "/v1/auth/signup", json={"email": "ed@example.com", "password": PASSWORD}
            ).status_code
            == 201
        )
        granted = cli(env, "members", "set-role", "ed@example.com", "editor")
        assert granted.returncode == 0, granted.stderr
        editor = c.post(
            "/v1/auth/login", json={"email": "ed@example.com", "password": PASSWORD}
        ).json()
        adult = c.post(
            "/v1/catalog/titles",
            json=_title("Midnight Harbor", "R", ["Thriller"], ["Ines Moreau"]),
            headers=bearer(editor["access_token"]),
        )
        assert adult.status_code == 201, adult.text
        kids = c.post(
            "/v1/catalog/titles",
            json=_title("Robot and the Moon", "TV-Y", ["Kids", "Animation"], ["Kofi Mensah"]),
            headers=bearer(editor["access_token"]),
        )
        assert kids.status_code == 201

        # A member signs up, logs in, and makes a kids and an adult profile.
        assert (
            c.post(
                "/v1/auth/signup", json={"email": "fan@example.com", "password": PASSWORD}
            ).status_code
            == 201
        )
        member = c.post(
            "/v1/auth/login", json={"email": "fan@example.com", "password": PASSWORD}
        ).json()
        auth = bearer(member["access_token"])
        kid = c.post("/v1/profiles", json={"name": "Mia", "is_kids": True}, headers=auth).json()
        grown = c.post("/v1/profiles", json={"name": "Jo"}, headers=auth).json()
        kid_token = c.post(f"/v1/profiles/{kid['id']}/select", headers=auth).json()["access_token"]
        adult_token = c.post(f"/v1/profiles/{grown['id']}/select", headers=auth).json()[
            "access_token"
        ]

        # Browse a genre, search with a typo, read a title.
        page = c.get(
            "/v1/catalog/genres/thriller/titles", params={"limit": 10}, headers=bearer(adult_token)
        ).json()
        assert [t["name"] for t in page["items"]] == ["Midnight Harbor"]
        hits = c.get(
            "/v1/catalog/search", params={"q": "midnite harbr"}, headers=bearer(adult_token)
        ).json()
        assert hits[0]["title"]["name"] == "Midnight Harbor"
        by_cast = c.get(
            "/v1/catalog/search", params={"q": "ines moraeu"}, headers=bearer(adult_token)
        ).json()
        assert by_cast[0]["matched"] == "cast"
        page_of_title = c.get(
            f"/v1/catalog/titles/{adult.json()['id']}", headers=bearer(adult_token)
        )
        assert page_of_title.status_code == 200
        assert page_of_title.json()["cast"][0]["name"] == "Ines Moreau"

        # The kids profile cannot see the adult title, anywhere.
        assert (
            c.get(f"/v1/catalog/titles/{adult.json()['id']}", headers=bearer(kid_token)).status_code
            == 404
        )
        kid_hits = c.get(
            "/v1/catalog/search", params={"q": "midnight harbor"}, headers=bearer(kid_token)
        ).json()
        assert kid_hits == []
        kid_list = c.get("/v1/catalog/titles", headers=bearer(kid_token)).json()
        assert [t["name"] for t in kid_list["items"]] == ["Robot and the Moon"]

        # A member token may not write; expired and tampered tokens are refused.
        denied = c.post(
            "/v1/catalog/titles", json=_title("Nope", "PG", ["Drama"], []), headers=auth
        )
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/problem+json"
        expired = asyncio.run(_mint_expired_token(tmp_path / "data"))
        assert c.get("/v1/me", headers=bearer(expired)).status_code == 401
        tampered = member["access_token"][:-6] + (
            "AAAAAA" if not member["access_token"].endswith("AAAAAA") else "BBBBBB"
        )
        assert c.get("/v1/me", headers=bearer(tampered)).status_code == 401

        # Every endpoint the app routes is described in /openapi.json.
        spec = c.get("/openapi.json").json()
    routes = [*accounts_router.routes, *catalog_router.routes, *health_router.routes]
    expected = {
        (route.path, method.lower())
        for route in routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert expected <= described
    assert len(expected) >= 20
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
