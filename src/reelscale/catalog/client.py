"""What other services may ask of the catalog, in process or over HTTP."""

from __future__ import annotations

import uuid
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


class Catalog(Protocol):
    async def title_summary(self, title_id: uuid.UUID) -> TitleSummary:
        """Raises NotFound for an unknown title."""

    async def aclose(self) -> None:
        """Release connections."""


class HttpCatalog:
    def __init__(
        self, base_url: str, *, token: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(5.0),
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def title_summary(self, title_id: uuid.UUID) -> TitleSummary:
        try:
            response = await self._http.get(f"/v1/catalog/titles/{title_id}")
        except httpx.HTTPError as exc:
            raise Overloaded(f"catalog is unreachable: {exc}", retry_after=2) from exc
        if response.status_code == 404:
            raise NotFound("no such title")
        response.raise_for_status()
        return TitleSummary.model_validate(response.json())

    async def aclose(self) -> None:
        await self._http.aclose()
