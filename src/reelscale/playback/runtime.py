"""The playback service as a lifecycle service."""

from __future__ import annotations

from pathlib import Path

from reelscale.catalog.client import Catalog
from reelscale.core.lifecycle import Service
from reelscale.core.migrations import MigrationSet
from reelscale.core.platform import Platform
from reelscale.media.client import Media
from reelscale.playback import service
from reelscale.playback.delivery import MediaFiles
from reelscale.playback.models import Base
from reelscale.playback.service import PlaybackContext
from reelscale.playback.signing import media_key

MIGRATIONS = MigrationSet("playback", Base.metadata, Path(__file__).with_name("migrations"))
SOURCE = "reelscale/playback"
SWEEP_S = 30.0


class PlaybackRuntime(Service):
    name = "playback"

    def __init__(
        self, platform: Platform, *, catalog: Catalog, media: Media, files: MediaFiles
    ) -> None:
        super().__init__()
        self.platform = platform
        self.files = files
        self.media_key = media_key(platform.settings.resolved_secret_key())
        self.ctx = PlaybackContext(
            db=platform.db,
            clock=platform.clock,
            catalog=catalog,
            media=media,
            media_key=self.media_key,
            url_ttl_s=platform.settings.media_url_ttl_s,
        )
        self.every("end-silent-sessions", SWEEP_S, self._sweep, metrics=platform.metrics)

    async def _sweep(self) -> None:
        async with self.platform.db.transaction() as db_session:
            await service.end_silent_sessions(db_session=db_session, now=self.platform.clock.now())
