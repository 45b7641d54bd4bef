"""The operator routes on a small app wired by hand: real token checks, a real runtime
over the embedded store, the platform's problem handlers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm

from reelscale.core.clock import FakeClock
from reelscale.core.identity import TokenVerifier
from reelscale.core.problems import install_error_handlers
from reelscale.events.records import Record
from reelscale.functions import BatchFailure, FunctionRegistry, FunctionsRuntime
from reelscale.functions.api import router
from tests.events.conftest import embedded_backend, entries
from tests.functions.conftest import eventually

KEY = Ed25519PrivateKey.generate()
STREAM = "playback"


@dataclass
class Api:
    http: httpx.AsyncClient
    clock: FakeClock
    runtime: FunctionsRuntime
    app: FastAPI

    def auth(self, scope: str) -> dict[str, str]:
        now = int(self.clock.now().timestamp())
        claims: dict[str, Any] = {
            "sub": str(uuid.uuid4()), "iss": "test", "aud": "reelscale", "jti": uuid.uuid4().hex,
            "iat": now, "exp": now + 900, "scope": scope,
        }  # fmt: skip
        token = jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": "k1"})
        return {"Authorization": f"Bearer {token}"}


class Picky:
    def __init__(self) -> None:
        self.fixed = False
        self.seen: list[int] = []

    async def __call__(self, batch: list[Record]) -> BatchFailure | None:
        if not self.fixed and any(record.event.data["n"] % 2 for record in batch):
            raise ValueError("odd numbers refused")
        self.seen.extend(record.event.data["n"] for record in batch)
        return None


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    jwk = json.loads(OKPAlgorithm.to_jwk(KEY.public_key())) | {"kid": "k1"}

    async def fetch() -> dict[str, Any]:
        return {"keys": [jwk]}

    async with embedded_backend(tmp_path / "events") as backend:
        assert backend.clock is not None
        clock = backend.clock
        registry = FunctionRegistry()
        registry.function("analytics-playback", stream=STREAM, batch_size=1, max_retries=0)(Picky())
        runtime = FunctionsRuntime(backend.store, registry, clock=clock, refresh_s=0.1)
        app = FastAPI()
        app.state.verifier = TokenVerifier(
            fetch_jwks=fetch, issuer="test", audience="reelscale", clock=clock
        )
        app.state.functions = runtime
        app.include_router(router)
        install_error_handlers(app)
        await runtime.start()
        try:
            await backend.store.create_stream(STREAM)
            await backend.store.put_batch(STREAM, entries(4))
            await eventually(lambda: dead_letters_stored(runtime, 2))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                yield Api(http, clock, runtime, app)
        finally:
            await runtime.stop()


async def dead_letters_stored(runtime: FunctionsRuntime, count: int) -> bool:
    (status,) = await runtime.status()
    return status.dead_letters == count and status.lag_records == 0


async def test_listing_needs_a_token_with_ops_read(api: Api) -> None:
    response = await api.http.get("/v1/ops/functions")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await api.http.get("/v1/ops/functions", headers=api.auth("catalog:read"))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_list_and_get_show_lag_errors_and_dead_letters(api: Api) -> None:
    response = await api.http.get("/v1/ops/functions", headers=api.auth("ops:read"))
    assert response.status_code == 200, response.text
    (listed,) = response.json()
    assert listed["name"] == "analytics-playback"
    assert listed["stream"] == STREAM
    assert listed["lag_records"] == 0
    assert listed["errors"] == 2
    assert listed["dead_letters"] == 2
    assert listed["state"] == "running"
    one = await api.http.get("/v1/ops/functions/analytics-playback", headers=api.auth("ops:read"))
    assert one.status_code == 200
    assert one.json()["dead_letter_stream"] == "dlq-analytics-playback"


async def test_unknown_and_malformed_names_are_problems(api: Api) -> None:
    read = api.auth("ops:read ops:write")
    for path in (
        "/v1/ops/functions/nope",
        "/v1/ops/functions/nope/dead-letters",
    ):
        response = await api.http.get(path, headers=read)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "no function named 'nope'"
    response = await api.http.post("/v1/ops/functions/nope/dead-letters/replay", headers=read)
    assert response.status_code == 404
    response = await api.http.get("/v1/ops/functions/Not_A_Name", headers=read)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    response = await api.http.get(
        "/v1/ops/functions/analytics-playback/dead-letters?limit=0", headers=read
    )
    assert response.status_code == 422
    response = await api.http.get(
        "/v1/ops/functions/analytics-playback/dead-letters?after=-1", headers=read
    )
    assert response.status_code == 422


async def test_dead_letters_are_listed_with_the_original_and_the_error(api: Api) -> None:
    response = await api.http.get(
        "/v1/ops/functions/analytics-playback/dead-letters", headers=api.auth("ops:read")
    )
    assert response.status_code == 200, response.text
    letters = response.json()
    assert [letter["event"]["data"]["n"] for letter in letters] == [1, 3]
    assert letters[0]["error"].startswith("ValueError: odd numbers refused")
    assert letters[0]["attempts"] == 1
    assert letters[0]["stream"] == STREAM
    assert letters[0]["reason"] == "retries_exhausted"
    paged = await api.http.get(
        "/v1/ops/functions/analytics-playback/dead-letters",
        params={"after": letters[0]["letter_sequence"], "limit": 10},
        headers=api.auth("ops:read"),
    )
    assert [letter["event"]["data"]["n"] for letter in paged.json()] == [3]


async def test_replay_needs_ops_write_and_puts_letters_back_once(api: Api) -> None:
    path = "/v1/ops/functions/analytics-playback/dead-letters/replay"
    response = await api.http.post(path, headers=api.auth("ops:read"))
    assert response.status_code == 403
    handler = api.runtime.registry.get("analytics-playback").handler
    assert isinstance(handler, Picky)
    handler.fixed = True
    response = await api.http.post(path, headers=api.auth("ops:write"))
    assert response.status_code == 200, response.text
    assert response.json() == {"function": "analytics-playback", "replayed": 2, "skipped": 0}
    again = await api.http.post(path, headers=api.auth("ops:write"))
    assert again.json()["replayed"] == 0
    await eventually(lambda: sorted(handler.seen) == [0, 1, 2, 3])


async def test_a_process_without_the_runtime_answers_503(api: Api) -> None:
    del api.app.state.functions
    response = await api.http.get("/v1/ops/functions", headers=api.auth("ops:read"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"


async def test_the_routes_are_documented_in_openapi(api: Api) -> None:
    schema = api.app.openapi()
    paths = schema["paths"]
    listing = paths["/v1/ops/functions"]["get"]
    assert listing["tags"] == ["operations"]
    ok = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["items"]["$ref"].endswith("/FunctionStatus")
    assert {"401", "403", "503"} <= set(listing["responses"])
    replay = paths["/v1/ops/functions/{name}/dead-letters/replay"]["post"]
    assert replay["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ReplayResult"
    )
    assert "DeadLetter" in schema["components"]["schemas"]
