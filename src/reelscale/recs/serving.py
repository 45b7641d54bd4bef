"""`RecsService`: builds models, picks up newer ones from disk, and answers rows from memory.

The model in use is one reference, `self._model`. A build makes a complete new `RecsModel`
off the event loop, then replaces that reference in one assignment; a request reads the
reference once and uses only that snapshot, so it sees the old model or the new one, never
a mix. Playback events update the live overlay (`live`) in between, and a profile's new
onboarding picks replace that one profile's state in the model in use (`on_event`).

Where models come from:

- **its own builds**: on start (unless a fresh artifact is there), every
  `retrain_interval_s`, and after `request_rebuild` (the catalog changed: debounced, so a
  burst of edits costs one build, and never two builds at once);
- **artifacts** (`artifacts.ModelStore`, when given one): every build is published there,
  and every `artifact_poll_s` the service checks the pointer and loads a newer version that
  another process wrote (`reelscale recs train`, another replica). A damaged artifact is
  refused with a log line, once, and the model in use keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from reelscale.core.clock import Clock
from reelscale.core.events import CloudEvent
from reelscale.core.lifecycle import Service
from reelscale.core.metrics import Metrics
from reelscale.recs import training
from reelscale.recs.artifacts import ArtifactError, ModelStore
from reelscale.recs.live import LiveSignals, with_picks
from reelscale.recs.rows import Row, RowBuilder, Viewer
from reelscale.recs.snapshot import BuildConfig, RecsModel, empty_model, genre_lookup
from reelscale.recs.sources import CatalogSnapshot, PlatformSources, ProfileSource, SignalSource

log = logging.getLogger("reelscale.recs")

PLAYBACK_EVENTS = ("playback.started", "playback.heartbeat", "playback.stopped", "playback.thumb")
PICKS_UPDATED = "profile.picks_updated"  # from accounts, on the `platform` stream
SEEN_EVENTS = 20_000  # event ids remembered, so a redelivered event counts once


@dataclass(frozen=True)
class RecsConfig:
    retrain_interval_s: float = 3600.0  # 0: no schedule (e.g. `reelscale recs train` by cron)
    artifact_poll_s: float = 5.0
    rebuild_debounce_s: float = 30.0
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
        config: RecsConfig | None = None,
        metrics: Metrics | None = None,
        store: ModelStore | None = None,
    ) -> None:
        super().__init__()
        self.sources = PlatformSources(catalog=catalog, signals=signals, profiles=profiles)
        self.clock = clock
        self.config = config or RecsConfig()
        self.store = store
        self.live = LiveSignals()
        self.rows = RowBuilder(
            row_size=self.config.row_size,
            max_rows=self.config.max_rows,
            genre_rows=self.config.genre_rows,
        )
        self._model = empty_model(clock.now())
        self._training = asyncio.Lock()
        self._rebuild_wanted = asyncio.Event()
        self._rebuild_reasons: list[str] = []
        self._refused: set[int] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.last_train_s = 0.0
        self.builds = 0
        if self.config.retrain_interval_s > 0:
            self.every("retrain", self.config.retrain_interval_s, self._tick, metrics=metrics)
        if store is not None:
            self.every("artifacts", self.config.artifact_poll_s, self._poll, metrics=metrics)
        self.supervise("rebuilds", self._rebuilds, metrics=metrics)

    @property
    def model(self) -> RecsModel:
        return self._model

    async def on_start(self) -> None:
        if self.store is not None:
            await self.poll_artifacts()
        if self._fresh() and self._model.n_items > 0:
            # Serve it now, and rebuild soon: the catalog or signals may have changed while
            # this process was down (the demo seeds titles after an earlier start, say).
            self.request_rebuild("start")
            return
        try:  # nothing (or nothing useful) to serve: build before taking requests
            await self.retrain(reason="start")
        except Exception:
            if self._model.version == 0:
                raise  # nothing to serve: starting would only hide the fault
            log.exception(
                "recs build on start failed; serving the last artifact until the next build",
                extra={"version": self._model.version},
            )

    async def retrain(self, *, reason: str = "requested") -> RecsModel:
        """Read a fresh snapshot of the platform, build a model from it, publish it (with a
        store) and swap it in. One build at a time: a second call waits for the first."""
        async with self._training:
            result = await training.train(
                self.sources,
                clock=self.clock,
                version=self._model.version + 1,
                config=self.config.build,
            )
            model = result.model
            if self.store is not None:
                model = await asyncio.to_thread(self.store.publish, model)
            self.swap(model)
            self.last_train_s = result.seconds
            self.builds += 1
            log.info(
                "recs model built",
                extra={
                    "version": model.version,
                    "algorithm": model.algorithm,
                    "reason": reason,
                    "seconds": round(result.seconds, 3),
                    **model.stats,
                },
            )
            return model

    def request_rebuild(self, reason: str) -> None:
        """Ask for a build soon (e.g. a title was added). Requests within
        `rebuild_debounce_s` of the first one share one build; a request during a build
        gets one more build after it. Call it on the service's event loop."""
        if len(self._rebuild_reasons) < 50:
            self._rebuild_reasons.append(reason[:200])
        self._rebuild_wanted.set()

    async def _rebuilds(self) -> None:
        while True:
            await self._rebuild_wanted.wait()
            await asyncio.sleep(self.config.rebuild_debounce_s)
            self._rebuild_wanted.clear()
            reasons, self._rebuild_reasons = self._rebuild_reasons, []
            try:
                await self.retrain(reason="; ".join(dict.fromkeys(reasons)) or "requested")
            except Exception:
                self._rebuild_reasons[:0] = reasons
                self._rebuild_wanted.set()  # still wanted: tried again after the backoff
                raise

    async def _tick(self) -> None:
        await self.retrain(reason="schedule")

    async def _poll(self) -> None:
        await self.poll_artifacts()

    async def poll_artifacts(self) -> bool:
        """Swap in the artifact the pointer names if it is newer than the model in use.
        True when it did; a damaged artifact is refused (logged once) and changes nothing."""
        store = self.store
        if store is None:
            return False
        try:
            version = await asyncio.to_thread(store.current_version)
        except ArtifactError as exc:
            self._refuse(-1, exc)  # -1: the pointer itself
            return False
        self._refused.discard(-1)
        if version is None or version <= self._model.version or version in self._refused:
            return False
        started = time.perf_counter()
        try:
            model = await asyncio.to_thread(store.load, version)
        except ArtifactError as exc:
            self._refuse(version, exc)
            return False
        if model.version <= self._model.version:
            return False  # a build of ours overtook it while it loaded
        self.swap(model)
        log.info(
            "recs artifact loaded",
            extra={"version": model.version, "seconds": round(time.perf_counter() - started, 3)},
        )
        return True

    def _refuse(self, version: int, error: ArtifactError) -> None:
        if version in self._refused:
            return  # said once; artifacts are never rewritten, so it stays refused
        self._refused.add(version)
        log.warning(
            "recs artifact refused; the model in use keeps serving",
            extra={"reason": str(error), "serving": self._model.version},
        )

    def swap(self, model: RecsModel) -> None:
        """Make `model` the one requests use, dropping live marks it already covers and
        giving it the picks saved since it read the platform."""
        self.live.rebase(model)
        self.live.trending(model)  # warm the cache, so no request pays for the first sort
        if self.live.picks:
            genres = genre_lookup({name: g for g, name in enumerate(model.genre_names)})
            for profile, picks in self.live.picks.items():
                model.profiles[profile] = with_picks(
                    model, model.profiles.get(profile), picks, genres
                )
        self._model = model  # the single reference readers load

    async def on_event(self, event: CloudEvent) -> None:
        """Fold one event in: `playback.*` updates the live overlay at once; `catalog.title.*`
        asks for a rebuild; `profile.picks_updated` refreshes that profile's state. Anything
        else, and a redelivered event, is ignored."""
        if event.id in self._seen:
            return
        self._seen[event.id] = None
        if len(self._seen) > SEEN_EVENTS:
            self._seen.popitem(last=False)
        if event.type in PLAYBACK_EVENTS:
            title = event.subject or event.data.get("title_id")
            self.live.apply(
                type=event.type,
                title_id=title if isinstance(title, str) else "",
                data=event.data,
                at=event.time,
                model=self._model,
            )
        elif event.type.startswith("catalog.title."):
            self.request_rebuild(f"{event.type} {event.subject or ''}".strip())
        elif event.type == PICKS_UPDATED:
            self._picks_updated(event)

    def _picks_updated(self, event: CloudEvent) -> None:
        """New onboarding picks: that one profile's state in the model in use is rebuilt
        from them now, so its next home page is led by them.

        Why replace the profile's entry in place rather than overlay picks per request like
        thumbs: rows read a profile's genre order and picks from its `ProfileState`, and a
        new profile has nothing else, so one dict entry replaced (atomic for readers on any
        thread) changes exactly that page and costs requests nothing. The picks also stay in
        `live` until a build that read them is swapped in (`swap` re-applies them), so a
        build that started before they were saved does not lose them."""
        kept = self.live.set_picks(data=event.data, at=event.time)
        if kept is None:
            return
        profile, picks = kept
        model = self._model
        genres = genre_lookup({name: g for g, name in enumerate(model.genre_names)})
        model.profiles[profile] = with_picks(model, model.profiles.get(profile), picks, genres)

    async def on_events(self, events: list[CloudEvent]) -> None:
        """A batch from the stream, in order."""
        for event in events:
            await self.on_event(event)

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

    def _fresh(self) -> bool:
        """Is the model in use (loaded from an artifact) recent enough to skip a build?"""
        if self._model.version == 0:
            return False
        interval = self.config.retrain_interval_s
        age = (self.clock.now() - self._model.trained_at).total_seconds()
        return interval <= 0 or age < interval
