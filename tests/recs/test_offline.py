"""The offline jobs on CSV files: top-k lists and evaluation under the protocol."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from reelscale.recs.data import load_interactions
from reelscale.recs.errors import DataError
from reelscale.recs.offline import evaluate, topk
from tests.recs.conftest import write


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_topk_writes_k_unseen_items_per_user(tmp_path: Path, small_csv: tuple[Path, Path]) -> None:
    interactions, items = small_csv
    out = tmp_path / "out" / "top.csv"
    result = topk(interactions, items, 7, out)
    rows = read_rows(out)
    assert list(rows[0]) == ["user", "item", "rank"]
    train = load_interactions(interactions)
    seen = set(zip(train.users.tolist(), train.items.tolist(), strict=True))
    user_at = {u: n for n, u in enumerate(train.user_ids)}
    item_at = {i: n for n, i in enumerate(train.item_ids)}
    assert not any((user_at[r["user"]], item_at[r["item"]]) in seen for r in rows)
    per_user = Counter(r["user"] for r in rows)
    assert set(per_user) == set(train.user_ids)
    assert set(per_user.values()) == {7}
    for user in list(per_user)[:20]:
        assert [int(r["rank"]) for r in rows if r["user"] == user] == list(range(1, 8))
    assert result["rows"] == len(rows) == 7 * train.n_users
    assert result["users_with_short_lists"] == 0


def test_topk_fills_from_the_items_file_when_history_covers_everything(tmp_path: Path) -> None:
    train = write(tmp_path / "t.csv", "user,item\na,1\na,2\nb,2\nb,3\nc,1\nc,3\n")
    items = write(
        tmp_path / "items.csv", "item,title,genres,year\n1,A,,\n2,B,,\n3,C,,\n4,D,,\n5,E,,\n"
    )
    out = tmp_path / "top.csv"
    topk(train, items, 3, out, model="popularity")
    rows = read_rows(out)
    by_user = {u: [r["item"] for r in rows if r["user"] == u] for u in "abc"}
    assert by_user["a"][0] == "3"
    assert {by_user["a"][1], by_user["a"][2]} == {"4", "5"}  # cold items fill the list
    assert all(len(v) == 3 for v in by_user.values())


def test_evaluate_reports_metrics_time_and_choices(small_csv: tuple[Path, Path]) -> None:
    interactions, items = small_csv
    result = evaluate(interactions, items, model="ease")
    for name in ("map", "map_at_10", "ndcg_at_10", "precision_at_10", "recall_at_10"):
        assert 0.0 < result[name] < 1.0
    assert result["model"] == "ease"
    assert {"l2", "drop", "weighting"} <= set(result["params"])
    assert result["train_seconds"] > 0
    assert result["users_evaluated"] == 300
    assert result["train_rows"] + result["test_rows"] == result["interactions"]
    assert result["protocol"]["split"].startswith("stratified by user, 0.75 train, seed 42")


def test_auto_beats_popularity_and_reports_the_ranker(small_csv: tuple[Path, Path]) -> None:
    interactions, items = small_csv
    auto = evaluate(interactions, items)
    floor = evaluate(interactions, items, model="popularity")
    assert auto["ndcg_at_10"] > floor["ndcg_at_10"] + 0.1
    assert auto["validation"]["ndcg_at_10"] > 0
    if auto["model"] == "ease+ranker":
        assert "launch" in auto["params"]["ranker_weights"]
        assert auto["validation"]["ranked_ndcg_at_10"] > auto["validation"]["ndcg_at_10"]


def test_bad_input_reaches_no_output(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.csv", "user,item,rating\nu,i,3\nv,j,lots\n")
    out = tmp_path / "top.csv"
    with pytest.raises(DataError, match=":3: rating 'lots'"):
        topk(bad, None, 5, out)
    assert not out.exists()
