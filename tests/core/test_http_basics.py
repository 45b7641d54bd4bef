"""What every process serves: problem+json errors, request ids, metrics, health, body limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reelscale.app import ROLES
from tests.conftest import make_settings, started
from tests.support import bearer, member_token

pytestmark = pytest.mark.asyncio


async def test_unknown_route_is_problem_json(tmp_path: Path) -> None:
    async with started(make_settings(tmp_path)) as h:
        # Without a token the edge answers 401 for any path off its allow-list, so that
        # probing for routes learns nothing; with one, the router's own errors show.
        assert (await h.client.get("/nowhere")).status_code == 401
        h.client.headers.update(bearer(await member_token(h.client)))
        response = await h.client.get("/nowhere")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == 404
        assert body["title"]
        assert body["detail"]
        assert body["request_id"] == response.headers["x-request-id"]
        wrong_method = await h.client.delete("/v1/auth/login")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["content-type"] == "application/problem+json"


async def test_request_id_is_kept_when_sane(tmp_path: Path) -> None:
    async with started(make_settings(tmp_path)) as h:
        kept = await h.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert kept.headers["x-request-id"] == "abc-123"
        replaced = await h.client.get("/healthz", headers={"X-Request-ID": "<script>" * 30})
        assert replaced.headers["x-request-id"] != "<script>" * 30
        assert len(replaced.headers["x-request-id"]) == 32


async def test_health_readiness_and_metrics(tmp_path: Path) -> None:
    async with started(make_settings(tmp_path)) as h:
        assert (await h.client.get("/healthz")).json() == {"status": "ok"}
        ready = await h.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["roles"] == sorted(ROLES)  # `all` runs every role
        token = await member_token(h.client)
        await h.client.get("/v1/catalog/titles/not-a-uuid", headers=bearer(token))
        text = (await h.client.get("/metrics")).text
        assert 'reelscale_http_requests_total{method="GET",route="/healthz",status="200"}' in text
        assert 'route="/v1/catalog/titles/{title_id}"' in text  # templates, not raw paths
        assert "reelscale_http_request_duration_seconds_bucket" in text


async def test_body_limits(tmp_path: Path) -> None:
    async with started(make_settings(tmp_path, max_body_bytes=2048)) as h:
        big = {"email": "a@example.com", "password": "x" * 5000}
        declared = await h.client.post("/v1/auth/signup", json=big)
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"email": "a@example.com", "password": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        streamed = await h.client.post(
            "/v1/auth/signup", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        bogus = await h.client.post(
            "/v1/auth/signup",
            content=b"{}",
            headers={"content-length": "two", "content-type": "application/json"},
        )
        assert bogus.status_code in (400, 422)


async def test_unexpected_errors_are_500_problems_with_the_request_id(tmp_path: Path) -> None:
    async with started(make_settings(tmp_path)) as h:

        async def boom() -> None:
            raise RuntimeError("kaboom")

        h.app.add_api_route("/boom", boom)
        token = await member_token(h.client)  # past the edge, which wants one off its list
        transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(
                "/boom", headers={"X-Request-ID": "trace-me", **bearer(token)}
            )
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-request-id"] == "trace-me"
        assert response.json()["request_id"] == "trace-me"
        assert "kaboom" not in response.text  # internals stay in the log


async def test_made_up_methods_do_not_grow_metrics(tmp_path: Path) -> None:
    async with started(make_settings(tmp_path)) as h:
        for n in range(20):
            await h.client.request(f"X{n}", "/healthz")
        text = (await h.client.get("/metrics")).text
        assert 'method="OTHER"' in text
        assert 'method="X1"' not in text
