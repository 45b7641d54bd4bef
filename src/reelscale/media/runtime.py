"""The media service as a lifecycle service: blob store, staging area, transcode workers."""

from __future__ import annotations

from pathlib import Path

from reelscale.core.lifecycle import Service
from reelscale.core.migrations import MigrationSet
from reelscale.core.platform import Platform
from reelscale.media.blobs import BlobStore
from reelscale.media.models import Base
from reelscale.media.pipeline import PipelineContext
from reelscale.media.workers import TranscodeWorkers

MIGRATIONS = MigrationSet("media", Base.metadata, Path(__file__).with_name("migrations"))
SOURCE = "reelscale/media"
CHUNK_MAX_BYTES = 64 * 1024 * 1024


class MediaRuntime(Service):
    """Uploads and assets. Workers (the `worker` role) may run here or in other processes."""

    name = "media"

    def __init__(self, platform: Platform, blobs: BlobStore, *, workers: bool) -> None:
        super().__init__()
        self.platform = platform
        self.blobs = blobs
        self.staging = platform.settings.ensure_data_dir() / "staging"
        self.pipeline = PipelineContext(
            db=platform.db,
            blobs=blobs,
            clock=platform.clock,
            staging_root=self.staging / "jobs",
            events=platform.events,
        )
        self.workers: TranscodeWorkers | None = (
            TranscodeWorkers(
                self.pipeline,
                slots=platform.settings.transcode_slots,
                lease_s=platform.settings.transcode_lease_s,
                events=platform.events,
                metrics=platform.metrics,
            )
            if workers
            else None
        )

    async def on_start(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        if self.workers is not None:
            await self.workers.start()

    async def on_stop(self) -> None:
        if self.workers is not None:
            await self.workers.stop()

    def job_queued(self) -> None:
        if self.workers is not None:
            self.workers.wake()
