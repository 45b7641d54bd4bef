"""What other services may ask of accounts, in process or over HTTP."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, Field

from reelscale.core.errors import Overloaded


class ProfileRow(BaseModel):
    """What recommendations may know of a profile: its language and onboarding picks."""

    id: uuid.UUID
    language: str
    picked_genres: list[str] = Field(default_factory=list)
    picked_titles: list[uuid.UUID] = Field(default_factory=list)


class Accounts(Protocol):
    async def jwks(self) -> dict[str, Any]:
        """The public keys that verify access tokens (RFC 7517 JWK Set)."""

    async def aclose(self) -> None:
        """Release connections."""


class HttpAccounts:
    """Talks to an accounts process at `base_url`."""

    def __init__(self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(5.0), transport=transport
        )

    async def jwks(self) -> dict[str, Any]:
        try:
            response = await self._http.get("/.well-known/jwks.json")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise Overloaded(f"accounts is unreachable: {exc}", retry_after=2) from exc
        body: dict[str, Any] = response.json()
        return body

    async def aclose(self) -> None:
        await self._http.aclose()
