"""The catalog as a lifecycle service: it owns the search index."""

from __future__ import annotations

from pathlib import Path

from reelscale.catalog.models import Base
from reelscale.catalog.search import SearchIndex
from reelscale.core.lifecycle import Service
from reelscale.core.migrations import MigrationSet
from reelscale.core.platform import Platform

MIGRATIONS = MigrationSet("catalog", Base.metadata, Path(__file__).with_name("migrations"))
SOURCE = "reelscale/catalog"


class CatalogRuntime(Service):
    name = "catalog"

    def __init__(self, platform: Platform) -> None:
        super().__init__()
        self.platform = platform
        self.index = SearchIndex()

    async def on_start(self) -> None:
        async with self.platform.db.session() as db_session:
            await self.index.refresh(db_session)  # warm, so the first search is fast
