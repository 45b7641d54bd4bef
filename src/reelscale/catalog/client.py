"""What other services may ask of the catalog, in process or over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import httpx
from pydantic import BaseModel

from reelscale.core.errors import NotFound, Overloaded


class TitleSummary(BaseModel):
    """The facts other services need about a title (entitlement, maturity, windows)."""

    id: uuid.UUID
    kind: str
    name: str
    maturity_level: int
    original_language: str
    runtime_minutes: int | None


class RecsTitle(BaseModel):
    """A title with the features recommendations learn from (every title, any window)."""

    id: uuid.UUID
    name: str
    kind: str
    genres: list[str]
    cast: list[str]
    original_language: str
    maturity_level: int
    release_year: int | None
    popularity: float
    runtime_minutes: int | None
    available_from: datetime | None
    available_until: datetime | None


class Catalog(Protocol):
    async def title_summary(self, title_id: uuid.UUID) -> TitleSummary:
        """A title that is available now. Raises NotFound for an unknown or unavailable one."""

    async def aclose(self) -> None:
        """Release connections."""


TokenSource = Callable[[], Awaitable[str]]


class HttpCatalog:
    """Talks to a catalog process. `token` is asked for a fresh access token per call, so a
    long-lived client never outlives its 15-minute credentials."""

    def __init__(
        self,
        base_url: str,
        *,
        token: TokenSource,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(5.0), transport=transport
        )

    async def title_summary(self, title_id: uuid.UUID) -> TitleSummary:
        headers = {"Authorization": f"Bearer {await self._token()}"}
        try:
            response = await self._http.get(f"/v1/catalog/titles/{title_id}", headers=headers)
        except httpx.HTTPError as exc:
            raise Overloaded(f"catalog is unreachable: {exc}", retry_after=2) from exc
        if response.status_code == 404:
            raise NotFound("no such title")
        if response.status_code != 200:
            raise Overloaded(f"catalog answered {response.status_code}", retry_after=2)
        return TitleSummary.model_validate(response.json())

    async def aclose(self) -> None:
        await self._http.aclose()
