"""One training run: read the platform through its sources, build a model, say what it did.

The server's schedule, its rebuild requests and `reelscale recs train` all run this, so a
model is the same whoever built it. Reading happens on the event loop (the sources are async
clients); the build, which is CPU work for seconds, runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reelscale.core.clock import Clock
from reelscale.recs.artifacts import ModelStore
from reelscale.recs.snapshot import BuildConfig, RecsModel, build_model
from reelscale.recs.sources import PlatformSources, ProfileFacts

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    model: RecsModel
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What a person or a script wants to know about the run (JSON-ready)."""
        stats = self.model.stats
        return {
            "version": self.model.version,
            "algorithm": self.model.algorithm,
            "trained_at": self.model.trained_at.isoformat(),
            "context_ranker": bool(stats.get("context_kept")),
            "context_lists": int(stats.get("context_lists", 0)),
            **self.counts,
            "seconds": round(self.seconds, 3),
        }


async def train(
    sources: PlatformSources,
    *,
    clock: Clock,
    version: int,
    config: BuildConfig | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Read a fresh snapshot of the platform and build a model of `version` from it."""
    step = progress or (lambda _: None)
    started = time.perf_counter()
    now = clock.now()  # before reading: later playback events stay in the live overlay
    step("reading titles")
    titles = await sources.catalog.recs_titles()
    step("reading signals")
    signals = await sources.signals.recs_signals()
    profiles: list[ProfileFacts] = []
    if sources.profiles is not None:
        step("reading profiles")
        profiles = list(await sources.profiles.recs_profiles())
    model = await asyncio.to_thread(
        build_model,
        titles=titles,
        signals=signals,
        profiles=profiles,
        now=now,
        version=version,
        config=config,
        progress=step,
    )
    counts = {"titles": len(titles), "signals": len(signals), "profiles": len(model.profiles)}
    return TrainResult(model=model, seconds=time.perf_counter() - started, counts=counts)


async def train_and_publish(
    sources: PlatformSources,
    store: ModelStore,
    *,
    clock: Clock,
    config: BuildConfig | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One run of the offline job: build, write the next artifact, move the pointer."""
    step = progress or (lambda _: None)
    current = await asyncio.to_thread(store.current_version_or_none)
    result = await train(
        sources, clock=clock, version=(current or 0) + 1, config=config, progress=step
    )
    step("writing artifact")
    started = time.perf_counter()
    model = await asyncio.to_thread(store.publish, result.model)
    published = TrainResult(model, result.seconds + time.perf_counter() - started, result.counts)
    return published.summary() | {"path": str(store.path(model.version))}
