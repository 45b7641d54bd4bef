"""Small synthetic data sets with planted structure, and CSV writers for the file tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reelscale.recs.bench import platform_sources as make_platform_sources
from reelscale.recs.rhythm import RhythmConfig
from reelscale.recs.rhythm import rhythm_sources as make_rhythm_sources
from reelscale.recs.snapshot import RecsModel, build_model
from reelscale.recs.sources import StaticSources
from reelscale.recs.synthetic import SyntheticConfig, SyntheticData, generate, write_csv

SMALL = SyntheticConfig(users=300, items=400, interactions=18_000, seed=7)
PLATFORM = SyntheticConfig(users=200, items=300, interactions=12_000, seed=11)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def small() -> SyntheticData:
    return generate(SMALL)


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory, small: SyntheticData) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("recs")
    interactions, items = folder / "interactions.csv", folder / "items.csv"
    write_csv(small, interactions, items)
    return interactions, items


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def platform_sources() -> StaticSources:
    """Synthetic titles, profiles and playback signals shaped like the platform's."""
    return make_platform_sources(PLATFORM, now=NOW)


@pytest.fixture(scope="session")
def platform_model(platform_sources: StaticSources) -> RecsModel:
    return build_model(
        titles=platform_sources.titles,
        signals=platform_sources.signals,
        profiles=platform_sources.profiles,
        now=NOW,
        version=1,
    )


RHYTHM = RhythmConfig(profiles=240, titles_per_genre=80, seed=5)


@pytest.fixture(scope="session")
def rhythm_sources() -> StaticSources:
    """Profiles with a planted daily rhythm: one genre in the evening, another at breakfast."""
    return make_rhythm_sources(RHYTHM, now=NOW)


@pytest.fixture(scope="session")
def rhythm_model(rhythm_sources: StaticSources) -> RecsModel:
    return build_model(
        titles=rhythm_sources.titles,
        signals=rhythm_sources.signals,
        profiles=rhythm_sources.profiles,
        now=NOW,
        version=1,
    )
