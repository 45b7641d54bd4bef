"""The media client for callers in the same process."""

from __future__ import annotations

import uuid

from reelscale.media import service
from reelscale.media.client import PlayableAsset
from reelscale.media.runtime import MediaRuntime


class InProcessMedia:
    def __init__(self, runtime: MediaRuntime) -> None:
        self._runtime = runtime

    async def playable_asset(self, title_id: uuid.UUID) -> PlayableAsset | None:
        async with self._runtime.platform.db.session() as db_session:
            asset = await service.playable_asset(db_session=db_session, title_id=title_id)
        if asset is None:
            return None
        return PlayableAsset(
            asset_id=asset.id,
            title_id=asset.title_id,
            duration_s=asset.duration_s,
            has_poster=asset.poster_key is not None,
            has_thumbnails=asset.thumbnails_key is not None,
        )

    async def aclose(self) -> None:
        return None
