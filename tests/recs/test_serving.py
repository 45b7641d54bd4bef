"""RecsService: trains on start, swaps models atomically, folds playback events in at once."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from reelscale.core.clock import FakeClock
from reelscale.core.events import EventHook
from reelscale.recs.rows import Row, Viewer
from reelscale.recs.serving import RecsService
from reelscale.recs.snapshot import RecsModel, build_model
from reelscale.recs.sources import SignalRecord, StaticSources
from tests.recs.conftest import NOW


def layout(rows: list[Row]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((r.id, tuple(c.id for c in r.items)) for r in rows)


@pytest.fixture
def sources(platform_sources: StaticSources) -> StaticSources:
    return replace(platform_sources, signals=list(platform_sources.signals))


async def started(sources: StaticSources) -> tuple[RecsService, EventHook, FakeClock]:
    clock = FakeClock(NOW)
    hook = EventHook(clock=clock)
    service = RecsService(
        catalog=sources, signals=sources, profiles=sources, clock=clock, events=hook
    )
    await service.start()
    return service, hook, clock


async def test_starts_with_a_trained_model_and_retrains_to_a_new_version(
    sources: StaticSources,
) -> None:
    service, _, _ = await started(sources)
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
    service, hook, clock = await started(sources)
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
        await hook.emit(source="t", type="playback.started", subject=title, data=data)
        clock.advance(600)
        await hook.emit(
            source="t",
            type="playback.stopped",
            subject=title,
            data=data | {"position_s": 0.4 * model.durations[model.index[title]]},
        )
        rows = service.home_rows(viewer=viewer)
        assert service.model is model  # no retrain happened
        assert rows[0].id == "continue-watching"
        assert rows[0].items[0].id == title
        assert rows[0].progress[0] == pytest.approx(0.4)
        assert all(title not in {c.id for c in r.items} for r in rows[1:])

        # Finishing it takes it out again, and the next build (which reads the same fact
        # from the source) keeps it out after the live mark is dropped.
        clock.advance(3600)
        await hook.emit(
            source="t",
            type="playback.stopped",
            subject=title,
            data=data | {"position_s": model.durations[model.index[title]]},
        )
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
    service, hook, clock = await started(sources)
    try:
        model = service.model
        before = service.live.trending(model)
        title = model.item_ids[before[-1]]  # the least trending title with any plays
        for n in range(40):
            clock.advance(30)
            await hook.emit(
                source="t",
                type="playback.started",
                subject=title,
                data={"profile_id": f"p{n}", "session_id": f"s{n}"},
            )
        assert service.live.trending(model)[0] == model.index[title]
    finally:
        await service.stop()
