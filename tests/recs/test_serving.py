"""RecsService: trains on start, swaps models atomically, folds playback events in at once."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.recs.rows import Row, Viewer
from reelscale.recs.serving import RecsConfig, RecsService
from reelscale.recs.snapshot import RecsModel, build_model
from reelscale.recs.sources import SignalRecord, StaticSources
from tests.recs.conftest import NOW


def layout(rows: list[Row]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((r.id, tuple(c.id for c in r.items)) for r in rows)


@pytest.fixture
def sources(platform_sources: StaticSources) -> StaticSources:
    return replace(platform_sources, signals=list(platform_sources.signals))


def event(clock: FakeClock, type: str, title: str, data: dict[str, Any]) -> CloudEvent:
    """An event as the stream delivers it: subject and data both name the title."""
    return CloudEvent(
        id=uuid.uuid4().hex,
        source="test",
        type=type,
        time=clock.now(),
        subject=title,
        data=data | {"title_id": title},
    )


async def started(sources: StaticSources) -> tuple[RecsService, FakeClock]:
    clock = FakeClock(NOW)
    service = RecsService(catalog=sources, signals=sources, profiles=sources, clock=clock)
    await service.start()
    return service, clock


async def test_starts_with_a_trained_model_and_retrains_to_a_new_version(
    sources: StaticSources,
) -> None:
    service, _ = await started(sources)
    try:
        first = service.model
        assert first.version == 1
        assert first.algorithm.startswith("ease")
        assert first.n_items == len(sources.titles)
        second = await service.retrain()
        assert second.version == 2
        assert service.model is second
    finally:
        await service.stop()


def test_readers_see_one_whole_model_while_models_swap(
    sources: StaticSources, platform_model: RecsModel
) -> None:
    clock = FakeClock(NOW)
    service = RecsService(catalog=sources, signals=sources, clock=clock)
    # A second model from half the signals: different lists for the same profiles.
    other = build_model(
        titles=sources.titles,
        signals=sources.signals[::2],
        profiles=sources.profiles,
        now=NOW,
        version=2,
    )
    viewers = [Viewer(p) for p in list(platform_model.profiles)[:8]]
    expected: dict[str, set[object]] = {}
    for model in (platform_model, other):
        service.swap(model)
        for viewer in viewers:
            expected.setdefault(viewer.profile_id, set()).add(
                layout(service.home_rows(viewer=viewer, now=NOW))
            )
    assert all(len(v) == 2 for v in expected.values())
    failures: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for viewer in viewers:
                got = layout(service.home_rows(viewer=viewer, now=NOW))
                if got not in expected[viewer.profile_id]:
                    failures.append(viewer.profile_id)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for n in range(300):
        service.swap(other if n % 2 else platform_model)
    stop.set()
    for thread in readers:
        thread.join()
    assert failures == []


async def test_a_stopped_event_moves_a_title_into_continue_watching_without_retraining(
    sources: StaticSources,
) -> None:
    service, clock = await started(sources)
    try:
        model = service.model
        profile = next(p for p, s in model.profiles.items() if len(s.progress) > 20)
        seen = {m.item for m in model.profiles[profile].progress}
        title = next(
            model.item_ids[i]
            for i in model.popular
            if i not in seen
            and model.maturity[i] <= 18
            and model.available_until[i] > 2e9
            and model.available_from[i] < NOW.timestamp()
        )
        viewer = Viewer(profile)
        assert title not in {c.id for c in service.home_rows(viewer=viewer)[0].items}
        clock.advance(60)
        data = {"profile_id": profile, "session_id": "s1"}
        await service.on_event(event(clock, "playback.started", title, data | {"device": "tv"}))
        clock.advance(600)
        stopped = event(
            clock,
            "playback.stopped",
            title,
            data | {"position_s": 0.4 * model.durations[model.index[title]]},
        )
        await service.on_event(stopped)
        rows = service.home_rows(viewer=viewer)
        assert service.model is model  # no retrain happened
        assert rows[0].id == "continue-watching"
        assert rows[0].items[0].id == title
        assert rows[0].progress[0] == pytest.approx(0.4)
        assert all(title not in {c.id for c in r.items} for r in rows[1:])

        # Finishing it takes it out again, and the next build (which reads the same fact
        # from the source) keeps it out after the live mark is dropped.
        clock.advance(3600)
        finished = event(
            clock,
            "playback.stopped",
            title,
            data | {"position_s": model.durations[model.index[title]]},
        )
        # A batch from the stream, with the earlier stop redelivered after it (at least
        # once, out of order): the later position stands.
        await service.on_events([finished, stopped])
        assert title not in {c.id for c in service.home_rows(viewer=viewer)[0].items}
        duration = model.durations[model.index[title]]
        sources.signals.append(
            SignalRecord(profile, title, duration, duration, clock.now(), watched=True)
        )
        clock.advance(1)
        await service.retrain()
        assert profile not in service.live.progress
        assert title not in {c.id for r in service.home_rows(viewer=viewer) for c in r.items}
    finally:
        await service.stop()


async def test_plays_lift_a_title_into_trending_at_once(sources: StaticSources) -> None:
    service, clock = await started(sources)
    try:
        model = service.model
        before = service.live.trending(model)
        title = model.item_ids[before[-1]]  # the least trending title with any plays
        plays = []
        for n in range(40):
            clock.advance(30)
            data = {"profile_id": f"p{n}", "session_id": f"s{n}", "member_id": "m"}
            plays.append(event(clock, "playback.started", title, data | {"resume_at_s": 0}))
        await service.on_events(plays[:1])
        for _ in range(30):  # redelivered: counts once
            await service.on_event(plays[0])
        assert service.live.trending(model)[0] != model.index[title]
        await service.on_events(plays[1:])
        assert service.live.trending(model)[0] == model.index[title]
    finally:
        await service.stop()


async def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_rebuild_requests_are_debounced_into_one_build_that_brings_new_titles(
    sources: StaticSources,
) -> None:
    clock = FakeClock(NOW)
    config = RecsConfig(rebuild_debounce_s=0.3, retrain_interval_s=0)
    service = RecsService(
        catalog=sources, signals=sources, profiles=sources, clock=clock, config=config
    )
    await service.start()
    try:
        assert service.builds == 1
        new = replace(
            sources.titles[0],
            id="brand-new",
            name="Brand New",
            popularity=1e9,
            maturity_level=0,
            available_from=None,
            available_until=None,
        )
        sources.titles.append(new)
        for n in range(5):  # a burst of catalog edits
            service.request_rebuild(f"catalog.title.updated t{n}")
            await asyncio.sleep(0.02)
        await wait_for(lambda: service.builds == 2)
        assert "brand-new" in service.model.index
        shown = {c.id for r in service.home_rows(viewer=Viewer("newcomer")) for c in r.items}
        assert "brand-new" in shown
        await asyncio.sleep(0.6)
        assert service.builds == 2  # the burst cost one build

        # Requests while a build runs: one more build after it, never two at once.
        created = CloudEvent(
            id="e1", source="catalog", type="catalog.title.created", time=NOW, subject="x"
        )
        await service.on_event(created)
        await wait_for(service._training.locked)
        service.request_rebuild("during the build")
        service.request_rebuild("during the build, again")
        await wait_for(lambda: service.builds == 4)
        await asyncio.sleep(0.6)
        assert service.builds == 4
    finally:
        await service.stop()
