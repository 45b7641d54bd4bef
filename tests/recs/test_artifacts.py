"""Versioned artifacts: written whole or not at all, refused when damaged, swapped by servers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from reelscale.core.clock import FakeClock
from reelscale.recs import artifacts
from reelscale.recs.artifacts import ArtifactError, ModelStore
from reelscale.recs.rows import Viewer
from reelscale.recs.serving import RecsConfig, RecsService
from reelscale.recs.snapshot import RecsModel
from reelscale.recs.sources import StaticSources, TitleFacts
from tests.recs.conftest import NOW


def test_publish_and_load_round_trip(tmp_path: Path, platform_model: RecsModel) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.current_version() is None
    assert store.load_current() is None
    written = store.publish(platform_model)
    assert written.version == platform_model.version == 1
    assert store.current_version() == 1
    loaded = store.load(1)
    assert loaded.item_ids == platform_model.item_ids
    assert loaded.profiles.keys() == platform_model.profiles.keys()
    profile = next(p for p, s in platform_model.profiles.items() if s.candidates)
    assert loaded.profiles[profile].candidates == platform_model.profiles[profile].candidates
    assert loaded.stats == platform_model.stats
    # No temporary file is left behind, and the pointer is plain text.
    assert sorted(p.name for p in store.directory.iterdir()) == [".lock", "1.model", "CURRENT"]
    assert (store.directory / "CURRENT").read_text() == "1\n"


def test_versions_only_move_forward_and_old_ones_are_pruned(
    tmp_path: Path, platform_model: RecsModel
) -> None:
    store = ModelStore(tmp_path)
    versions = [store.publish(platform_model).version for _ in range(9)]
    assert versions == list(range(1, 10))  # a stale version number is raised, never reused
    assert store.current_version() == 9
    assert store.versions() == list(range(4, 10))  # the current one and five before it
    later = store.publish(replace(platform_model, version=42))
    assert later.version == 42
    assert store.load_current() is not None
    assert store.current_version() == 42


def damage(path: Path, how: str) -> None:
    blob = path.read_bytes()
    if how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "flipped":
        at = len(blob) - 100
        path.write_bytes(blob[:at] + bytes([blob[at] ^ 0x55]) + blob[at + 1 :])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "foreign":
        path.write_bytes(b"PK\x03\x04" + blob[4:])
    elif how == "header":
        path.write_bytes(artifacts.MAGIC + (10).to_bytes(4, "big") + b"{not json}" + blob)


@pytest.mark.parametrize("how", ["truncated", "flipped", "empty", "foreign", "header"])
def test_a_damaged_artifact_is_refused_with_the_reason(
    tmp_path: Path, platform_model: RecsModel, how: str
) -> None:
    store = ModelStore(tmp_path)
    store.publish(platform_model)
    damage(store.path(1), how)
    with pytest.raises(ArtifactError, match=r"1\.model: "):
        store.load(1)


def test_an_artifact_naming_anything_but_model_records_is_refused(tmp_path: Path) -> None:
    """Even with a correct checksum: the unpickler allows only the model's own classes."""
    payload = pickle.dumps(os.system)
    header = json.dumps(
        {
            "format": artifacts.FORMAT,
            "version": 1,
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
    ).encode()
    blob = artifacts.MAGIC + len(header).to_bytes(4, "big") + header + payload
    with pytest.raises(ArtifactError, match=r"posix\.system is not allowed"):
        artifacts.decode(blob)
    other = pickle.dumps({"not": "a model"})
    header = json.dumps(
        {"format": 1, "version": 1, "size": len(other), "sha256": hashlib.sha256(other).hexdigest()}
    ).encode()
    with pytest.raises(ArtifactError, match="not a RecsModel"):
        artifacts.decode(artifacts.MAGIC + len(header).to_bytes(4, "big") + header + other)


def test_a_damaged_pointer_is_an_error_and_the_next_publish_replaces_it(
    tmp_path: Path, platform_model: RecsModel
) -> None:
    store = ModelStore(tmp_path)
    store.publish(platform_model)
    (tmp_path / "CURRENT").write_text("../../etc/passwd")
    with pytest.raises(ArtifactError, match="not a version number"):
        store.current_version()
    assert store.publish(platform_model).version == 2
    assert store.current_version() == 2


def test_a_half_written_temporary_file_is_never_loadable(
    tmp_path: Path, platform_model: RecsModel
) -> None:
    """What a crash mid-write leaves: a hidden temporary file, no pointer change."""
    store = ModelStore(tmp_path)
    store.publish(platform_model)
    blob = artifacts.encode(replace(platform_model, version=2))
    (tmp_path / ".2.999.tmp").write_bytes(blob[: len(blob) // 3])
    assert store.versions() == [1]
    assert store.current_version() == 1
    assert store.publish(platform_model).version == 2  # and the next writer is not confused


async def served(
    sources: StaticSources, store: ModelStore, clock: FakeClock, **config: float
) -> RecsService:
    service = RecsService(
        catalog=sources,
        signals=sources,
        profiles=sources,
        clock=clock,
        store=store,
        config=RecsConfig(**config),  # type: ignore[arg-type]
    )
    await service.start()
    return service


async def test_the_server_publishes_its_builds_and_picks_up_newer_artifacts(
    tmp_path: Path,
    platform_sources: StaticSources,
    platform_model: RecsModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock = ModelStore(tmp_path), FakeClock(NOW)
    service = await served(platform_sources, store, clock)
    try:
        assert service.builds == 1
        assert service.model.version == 1
        assert store.current_version() == 1  # the server's own build is an artifact too

        # Another process (`reelscale recs train`) writes version 2.
        other = store.publish(replace(platform_model, algorithm="from-the-cli"))
        assert other.version == 2
        assert await service.poll_artifacts()
        assert service.model.version == 2
        assert service.model.algorithm == "from-the-cli"
        profile = next(iter(service.model.profiles))
        assert service.home_rows(viewer=Viewer(profile))

        # A damaged version 3: refused once, with a log line; version 2 keeps serving.
        store.publish(platform_model)
        damage(store.path(3), "truncated")
        with caplog.at_level(logging.WARNING, logger="reelscale.recs"):
            assert not await service.poll_artifacts()
            assert not await service.poll_artifacts()
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1
        assert "truncated" in refusals[0].__dict__["reason"]
        assert service.model.version == 2
        assert service.home_rows(viewer=Viewer(profile))

        # The next good artifact is taken.
        assert store.publish(platform_model).version == 4
        assert await service.poll_artifacts()
        assert service.model.version == 4
    finally:
        await service.stop()


async def test_the_poll_task_swaps_without_being_asked(
    tmp_path: Path, platform_sources: StaticSources, platform_model: RecsModel
) -> None:
    store, clock = ModelStore(tmp_path), FakeClock(NOW)
    service = await served(platform_sources, store, clock, artifact_poll_s=0.05)
    try:
        await asyncio.to_thread(store.publish, platform_model)
        for _ in range(100):
            if service.model.version == 2:
                break
            await asyncio.sleep(0.05)
        assert service.model.version == 2
    finally:
        await service.stop()


async def test_a_restart_serves_a_fresh_artifact_without_building(
    tmp_path: Path, platform_sources: StaticSources, platform_model: RecsModel
) -> None:
    store, clock = ModelStore(tmp_path), FakeClock(NOW)
    store.publish(platform_model)
    service = await served(platform_sources, store, clock)
    try:
        assert service.builds == 0
        assert service.model.version == 1
    finally:
        await service.stop()
    clock.advance(2 * 3600)  # older than the retrain interval: build on start
    service = await served(platform_sources, store, clock)
    try:
        assert service.builds == 1
        assert service.model.version == 2
    finally:
        await service.stop()
    damage(store.path(2), "flipped")  # a damaged current artifact: build instead
    service = await served(platform_sources, store, clock)
    try:
        assert service.builds == 1
        assert service.model.version == 3
    finally:
        await service.stop()


async def test_a_restart_does_not_serve_an_empty_artifact(
    tmp_path: Path, platform_sources: StaticSources
) -> None:
    # The demo's first start built a model before any title was seeded: the next start
    # must build, not serve empty rows until the hourly retrain.
    store, clock = ModelStore(tmp_path), FakeClock(NOW)
    empty = await served(StaticSources(), store, clock)
    await empty.stop()
    assert empty.model.n_items == 0
    service = await served(platform_sources, store, clock)
    try:
        assert service.builds == 1
        assert service.model.n_items == len(platform_sources.titles)
    finally:
        await service.stop()


class Flaky(StaticSources):
    """The catalog during an outage: every read fails until `down` is cleared."""

    down = True

    async def recs_titles(self) -> Sequence[TitleFacts]:
        if self.down:
            raise ConnectionError("catalog unreachable")
        return await super().recs_titles()


async def test_an_outage_at_start_serves_the_last_artifact_and_rebuilds_are_retried(
    tmp_path: Path,
    platform_sources: StaticSources,
    platform_model: RecsModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock = ModelStore(tmp_path), FakeClock(NOW)
    store.publish(platform_model)
    clock.advance(2 * 3600)  # stale: a build is due on start
    flaky = Flaky(
        titles=platform_sources.titles,
        signals=platform_sources.signals,
        profiles=platform_sources.profiles,
    )
    with caplog.at_level(logging.ERROR, logger="reelscale.recs"):
        service = await served(flaky, store, clock, rebuild_debounce_s=0.05)
    try:
        assert service.model.version == 1
        assert any("serving the last artifact" in r.getMessage() for r in caplog.records)
        service.request_rebuild("catalog.title.created")
        await asyncio.sleep(0.5)  # fails, and is tried again after a backoff
        assert service.builds == 0
        flaky.down = False
        for _ in range(200):
            if service.builds:
                break
            await asyncio.sleep(0.05)
        assert service.builds == 1
        assert service.model.version == 2
    finally:
        await service.stop()

    empty = ModelStore(tmp_path / "empty")
    flaky.down = True
    with pytest.raises(ConnectionError):  # nothing at all to serve: refuse to start
        await served(flaky, empty, clock)
