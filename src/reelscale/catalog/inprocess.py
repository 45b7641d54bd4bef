"""The catalog client for callers in the same process."""

from __future__ import annotations

import uuid

from reelscale.catalog import service
from reelscale.catalog.client import RecsTitle, TitleSummary
from reelscale.catalog.runtime import CatalogRuntime


class InProcessCatalog:
    def __init__(self, runtime: CatalogRuntime) -> None:
        self._runtime = runtime

    async def title_summary(self, title_id: uuid.UUID) -> TitleSummary:
        # The same rule the HTTP route applies to a caller without catalog:write.
        viewer = service.Viewer(now=self._runtime.platform.clock.now())
        async with self._runtime.platform.db.session() as db_session:
            title = await service.get_title(db_session=db_session, title_id=title_id, viewer=viewer)
            return TitleSummary.model_validate(title, from_attributes=True)

    async def recs_titles(self) -> list[RecsTitle]:
        """Every title with genres and cast, for training recommendations."""
        async with self._runtime.platform.db.session() as db_session:
            return await service.recs_titles(db_session=db_session)

    async def aclose(self) -> None:
        return None
