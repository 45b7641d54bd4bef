"""The recs routes on a small app wired by hand: real token checks, the real service."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm

from reelscale.core.clock import FakeClock
from reelscale.core.identity import TokenVerifier
from reelscale.core.problems import install_error_handlers
from reelscale.recs.api import router
from reelscale.recs.serving import RecsService
from reelscale.recs.sources import SignalRecord, StaticSources, TitleRecord
from tests.recs.conftest import NOW

KEY = Ed25519PrivateKey.generate()
PROFILE = str(uuid.uuid4())


def ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


def token(clock: FakeClock, scope: str, profile: dict[str, Any] | None) -> str:
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "sub": str(uuid.uuid4()), "iss": "test", "aud": "reelscale", "jti": uuid.uuid4().hex,
        "iat": now, "exp": now + 900, "scope": scope,
    }  # fmt: skip
    if profile is not None:
        claims["profile"] = profile
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": "k1"})


@pytest_asyncio.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, FakeClock]]:
    titles = ids(12)
    sources = StaticSources(
        titles=[
            TitleRecord(
                id=t,
                name=f"T{n}",
                genres=("Drama",) if n % 2 else ("Comedy",),
                maturity_level=17 if n == 3 else 7,
                popularity=100 - n,
                runtime_minutes=100,
            )
            for n, t in enumerate(titles)
        ],
        signals=[
            SignalRecord(PROFILE, titles[1], 3000, 6000, NOW - timedelta(hours=1)),
            SignalRecord(PROFILE, titles[2], 6000, 6000, NOW - timedelta(hours=2), watched=True),
        ],
    )
    clock = FakeClock(NOW)
    jwk = json.loads(OKPAlgorithm.to_jwk(KEY.public_key())) | {"kid": "k1"}

    async def fetch() -> dict[str, Any]:
        return {"keys": [jwk]}

    app = FastAPI()
    app.state.verifier = TokenVerifier(
        fetch_jwks=fetch, issuer="test", audience="reelscale", clock=clock
    )
    service = RecsService(catalog=sources, signals=sources, clock=clock)
    app.state.recs = service
    app.include_router(router)
    install_error_handlers(app)
    await service.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http, clock
    finally:
        await service.stop()


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_home_rows_for_a_profile(client: tuple[httpx.AsyncClient, FakeClock]) -> None:
    http, clock = client
    profile = {"id": PROFILE, "max_maturity": 13}
    response = await http.get("/v1/recs/home", headers=auth(token(clock, "catalog:read", profile)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile_id"] == PROFILE
    assert body["model_version"] == 1
    rows = body["rows"]
    assert rows[0]["id"] == "continue-watching"
    assert rows[0]["items"][0]["id"] == ids(12)[1]
    assert rows[0]["items"][0]["progress"] == 0.5
    shown = [item["id"] for row in rows for item in row["items"]]
    assert len(shown) == len(set(shown))
    assert ids(12)[3] not in shown  # rated above the profile's ceiling
    assert ids(12)[2] not in shown  # already watched
    assert {"id", "name", "kind", "year", "maturity_level", "language", "genres"} <= set(
        rows[1]["items"][0]
    )


@pytest.mark.parametrize(
    ("scope", "profile", "status"),
    [("catalog:read", None, 403), ("history:read", {"id": PROFILE}, 403)],
)
async def test_home_needs_a_profile_and_the_catalog_scope(
    client: tuple[httpx.AsyncClient, FakeClock], scope: str, profile: Any, status: int
) -> None:
    http, clock = client
    response = await http.get("/v1/recs/home", headers=auth(token(clock, scope, profile)))
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await http.get("/v1/recs/home")).status_code == 401


async def test_more_like_this(client: tuple[httpx.AsyncClient, FakeClock]) -> None:
    http, clock = client
    headers = auth(token(clock, "catalog:read", {"id": PROFILE, "max_maturity": 13}))
    title = ids(12)[1]
    response = await http.get(f"/v1/recs/titles/{title}/more-like-this", headers=headers)
    assert response.status_code == 200, response.text
    row = response.json()
    shown = [item["id"] for item in row["items"]]
    assert title not in shown
    assert ids(12)[3] not in shown
    assert shown
    assert shown[0] == ids(12)[2]  # watched together, though a comedy
    assert all("Drama" in item["genres"] for item in row["items"][1:5])  # then the same genre
    missing = await http.get(f"/v1/recs/titles/{uuid.uuid4()}/more-like-this", headers=headers)
    assert missing.status_code == 404
    bad = await http.get("/v1/recs/titles/not-a-uuid/more-like-this", headers=headers)
    assert bad.status_code == 422


async def test_home_is_ranked_for_the_requests_context(
    client: tuple[httpx.AsyncClient, FakeClock],
) -> None:
    http, clock = client
    clock.advance(20 * 3600)  # Thursday 1 January 2026, 20:00 UTC
    headers = auth(token(clock, "catalog:read", {"id": PROFILE}))
    response = await http.get("/v1/recs/home", params={"device": "roku"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["context"] == {"hour_bucket": 6, "weekend": False, "device": "tv"}
    phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
    response = await http.get("/v1/recs/home", headers=headers | {"User-Agent": phone})
    assert response.json()["context"]["device"] == "mobile"
    response = await http.get(
        "/v1/recs/home", params={"device": "web"}, headers=headers | {"User-Agent": phone}
    )
    assert response.json()["context"]["device"] == "web"  # what the page says wins
    response = await http.get("/v1/recs/home", headers=headers | {"User-Agent": "curl/8.5"})
    assert response.json()["context"]["device"] is None


@pytest.mark.parametrize("device", ["../etc", "a b", "x" * 65, ""])
async def test_a_malformed_device_is_refused(
    client: tuple[httpx.AsyncClient, FakeClock], device: str
) -> None:
    http, clock = client
    headers = auth(token(clock, "catalog:read", {"id": PROFILE}))
    response = await http.get("/v1/recs/home", params={"device": device}, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
