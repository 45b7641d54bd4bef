"""What other services may ask of media, in process or over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx
from pydantic import BaseModel

from reelscale.core.errors import Overloaded


class PlayableAsset(BaseModel):
    asset_id: uuid.UUID
    title_id: uuid.UUID
    duration_s: float
    has_poster: bool
    has_thumbnails: bool


class Media(Protocol):
    async def playable_asset(self, title_id: uuid.UUID) -> PlayableAsset | None:
        """The asset to play for a title, or None if nothing is playable yet."""

    async def aclose(self) -> None:
        """Release connections."""


class HttpMedia:
    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], Awaitable[str]],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(5.0), transport=transport
        )

    async def playable_asset(self, title_id: uuid.UUID) -> PlayableAsset | None:
        headers = {"Authorization": f"Bearer {await self._token()}"}
        try:
            response = await self._http.get(
                f"/v1/media/titles/{title_id}/playable-asset", headers=headers
            )
        except httpx.HTTPError as exc:
            raise Overloaded(f"media is unreachable: {exc}", retry_after=2) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise Overloaded(f"media answered {response.status_code}", retry_after=2)
        return PlayableAsset.model_validate(response.json())

    async def aclose(self) -> None:
        await self._http.aclose()
