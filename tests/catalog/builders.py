"""Request bodies and small HTTP helpers the catalog tests share."""

from __future__ import annotations

from typing import Any

from tests.conftest import Harness
from tests.support import bearer

TITLES = "/v1/catalog/titles"


def movie(name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "movie",
        "name": name,
        "release_year": 2020,
        "maturity_rating": "PG",
        "original_language": "en",
        "runtime_minutes": 100,
    }
    return body | fields


def series(name: str, **fields: Any) -> dict[str, Any]:
    return movie(name, kind="series", runtime_minutes=None) | fields


async def create(harness: Harness, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await harness.client.post(TITLES, json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def names(harness: Harness, token: str, path: str = TITLES, **params: Any) -> list[str]:
    response = await harness.client.get(path, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def search(harness: Harness, token: str, q: str) -> list[dict[str, Any]]:
    response = await harness.client.get(
        "/v1/catalog/search", params={"q": q}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    hits: list[dict[str, Any]] = response.json()
    return hits
