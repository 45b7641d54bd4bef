"""`RecsService`: trains on start and on a schedule, and answers rows from memory.

The model in use is one reference, `self._model`. A retrain builds a complete new
`RecsModel` off the event loop, then replaces that reference in one assignment; a request
reads the reference once and uses only that snapshot, so it sees the old model or the new
one, never a mix. Playback events update the live overlay (`live`) in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from reelscale.core.clock import Clock
from reelscale.core.events import CloudEvent, EventHook
from reelscale.core.lifecycle import Service
from reelscale.core.metrics import Metrics
from reelscale.recs.live import LiveSignals
from reelscale.recs.rows import Row, RowBuilder, Viewer
from reelscale.recs.snapshot import BuildConfig, RecsModel, build_model, empty_model
from reelscale.recs.sources import CatalogSnapshot, ProfileFacts, ProfileSource, SignalSource

log = logging.getLogger("reelscale.recs")


@dataclass(frozen=True)
class RecsConfig:
    retrain_interval_s: float = 3600.0
    row_size: int = 20
    max_rows: int = 20
    genre_rows: int = 8
    build: BuildConfig = field(default_factory=BuildConfig)


class RecsService(Service):
    name = "recs"

    def __init__(
        self,
        *,
        catalog: CatalogSnapshot,
        signals: SignalSource,
        clock: Clock,
        profiles: ProfileSource | None = None,
        events: EventHook | None = None,
        config: RecsConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__()
        self.catalog = catalog
        self.signals = signals
        self.profiles = profiles
        self.clock = clock
        self.config = config or RecsConfig()
        self.live = LiveSignals()
        self.rows = RowBuilder(
            row_size=self.config.row_size,
            max_rows=self.config.max_rows,
            genre_rows=self.config.genre_rows,
        )
        self._model = empty_model(clock.now())
        self._training = asyncio.Lock()
        self.last_train_s = 0.0
        if events is not None:
            # Subscribed at construction: the hook has no unsubscribe, and events that
            # arrive before the first build still belong in the overlay.
            events.subscribe(self.on_event, prefix="playback.")
        self.every("retrain", self.config.retrain_interval_s, self._tick, metrics=metrics)

    @property
    def model(self) -> RecsModel:
        return self._model

    async def on_start(self) -> None:
        await self.retrain()

    async def retrain(self) -> RecsModel:
        """Read a fresh snapshot of the platform, build a model from it, swap it in."""
        async with self._training:
            started = time.perf_counter()
            now = self.clock.now()  # before reading: later events stay in the overlay
            titles = await self.catalog.recs_titles()
            signals = await self.signals.recs_signals()
            profiles: list[ProfileFacts] = []
            if self.profiles is not None:
                profiles = list(await self.profiles.recs_profiles())
            model = await asyncio.to_thread(
                build_model,
                titles=titles,
                signals=signals,
                profiles=profiles,
                now=now,
                version=self._model.version + 1,
                config=self.config.build,
            )
            self.swap(model)
            self.last_train_s = time.perf_counter() - started
            log.info(
                "recs model built",
                extra={"version": model.version, "algorithm": model.algorithm, **model.stats},
            )
            return model

    async def _tick(self) -> None:
        await self.retrain()

    def swap(self, model: RecsModel) -> None:
        """Make `model` the one requests use, dropping live marks it already covers."""
        self.live.rebase(model)
        self.live.trending(model)  # warm the cache, so no request pays for the first sort
        self._model = model  # the single reference readers load

    async def on_event(self, event: CloudEvent) -> None:
        self.live.apply(
            type=event.type,
            title_id=event.subject or "",
            data=event.data,
            at=event.time,
            model=self._model,
        )

    def home_rows(self, *, viewer: Viewer, now: datetime | None = None) -> list[Row]:
        """The viewer's home page, from memory."""
        model = self._model
        return self.rows.home(
            model=model, live=self.live, viewer=viewer, now=now or self.clock.now()
        )

    def more_like_this(self, *, title_id: str, viewer: Viewer, now: datetime | None = None) -> Row:
        """Titles like `title_id` for this viewer, from memory. NotFound for an unknown one."""
        model = self._model
        return self.rows.more_like_this(
            model=model,
            live=self.live,
            title_id=title_id,
            viewer=viewer,
            now=now or self.clock.now(),
        )
