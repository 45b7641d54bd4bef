"""`reelscale recs ...` through Typer's runner: Rich text on stderr, JSON last on stdout."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelscale.core.settings import Settings
from reelscale.recs import cli
from reelscale.recs.artifacts import ModelStore
from reelscale.recs.pipeline import MODEL_NAMES
from reelscale.recs.sources import PlatformSources, StaticSources
from tests.recs.conftest import write

runner = CliRunner()


def last_json(output: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_evaluate_and_topk(tmp_path: Path, small_csv: tuple[Path, Path]) -> None:
    interactions, items = small_csv
    done = runner.invoke(
        cli.app,
        ["evaluate", "--interactions", str(interactions), "--items", str(items),
         "--model", "rp3beta"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    report = last_json(done.stdout)
    assert report["model"] == "rp3beta"
    assert "ndcg_at_10" in report
    assert "ndcg_at_10" in done.stderr  # the Rich table

    out = tmp_path / "top.csv"
    done = runner.invoke(
        cli.app,
        ["topk", "--train", str(interactions), "--k", "5", "--out", str(out),
         "--model", "popularity"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert last_json(done.stdout)["rows"] == 5 * 300
    assert out.read_text().startswith("user,item,rank\n")


def test_synthetic_command(tmp_path: Path) -> None:
    done = runner.invoke(cli.app, ["synthetic", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    lines = (tmp_path / "interactions.csv").read_text().splitlines()
    assert last_json(done.stdout)["rows"] == len(lines) - 1 > 90_000


def test_bad_input_exits_2_with_the_reason(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.csv", "usr,item\nu,i\n")
    done = runner.invoke(cli.app, ["evaluate", "--interactions", str(bad)])
    assert done.exit_code == 2
    assert "missing column(s) user" in done.stderr
    done = runner.invoke(cli.app, ["evaluate", "--interactions", str(bad), "--model", "bert"])
    assert done.exit_code == 2
    assert "--model must be one of" in done.stderr


def test_cli_model_names_match_the_pipeline() -> None:
    assert cli.MODEL_NAMES == MODEL_NAMES


@pytest.fixture
def platform_opener(platform_sources: StaticSources) -> Iterator[None]:
    @contextlib.asynccontextmanager
    async def opener(_settings: Settings) -> AsyncIterator[PlatformSources]:
        yield PlatformSources(
            catalog=platform_sources, signals=platform_sources, profiles=platform_sources
        )

    cli.use_platform_sources(opener)
    try:
        yield
    finally:
        cli.use_platform_sources(None)


def test_train_publishes_versioned_artifacts_and_prints_a_summary(
    tmp_path: Path, platform_opener: None, platform_sources: StaticSources
) -> None:
    env = {"REELSCALE_DATA_DIR": str(tmp_path)}
    done = runner.invoke(cli.app, ["train"], env=env)
    assert done.exit_code == 0, done.output
    summary = last_json(done.stdout)
    assert summary["version"] == 1
    assert summary["titles"] == len(platform_sources.titles)
    assert summary["signals"] == len(platform_sources.signals)
    assert str(summary["algorithm"]).startswith("ease")
    assert isinstance(summary["seconds"], float)
    assert "context ranker" in done.stderr
    for step in ("reading titles", "reading signals", "candidates", "writing artifact"):
        assert step in done.stderr
    store = ModelStore(tmp_path / "recs" / "models")
    assert summary["path"] == str(store.path(1))
    assert store.current_version() == 1
    assert store.load(1).n_items == len(platform_sources.titles)

    again = runner.invoke(cli.app, ["train", "--out", str(tmp_path / "elsewhere")], env=env)
    assert again.exit_code == 0, again.output
    assert last_json(again.stdout)["version"] == 1  # its own directory, its own history
    third = runner.invoke(cli.app, ["train"], env=env)
    assert last_json(third.stdout)["version"] == 2


def test_train_without_a_way_to_the_platform_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `reelscale.cli` registers the platform's opener when any test has imported it.
    monkeypatch.setattr(cli, "_opener", None)
    done = runner.invoke(cli.app, ["train"], env={"REELSCALE_DATA_DIR": str(tmp_path)})
    assert done.exit_code == 2
    assert "cannot reach the platform's data" in done.stderr
