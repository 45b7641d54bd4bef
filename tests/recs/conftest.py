"""Small synthetic data sets with planted structure, and CSV writers for the file tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelscale.recs.synthetic import SyntheticConfig, SyntheticData, generate, write_csv

SMALL = SyntheticConfig(users=300, items=400, interactions=18_000, seed=7)


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
