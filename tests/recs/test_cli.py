"""`reelscale recs ...` through Typer's runner: Rich text on stderr, JSON last on stdout."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from reelscale.recs import cli
from reelscale.recs.pipeline import MODEL_NAMES
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
