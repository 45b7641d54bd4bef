"""Offline jobs on CSV files: top-k lists for every user, and evaluation under the protocol.

The evaluation protocol (the numbers `evaluate` reports):

1. Load the interactions (duplicate (user, item) rows collapse, see `data`).
2. Split them with `split.stratified_split`: per user, a seeded random 75/25 split
   (`ratio=0.75`, `seed=42`, `by="user"`), as Microsoft Recommenders'
   `python_stratified_split`.
3. Fit on the train part only: hyper-parameters are chosen on a holdout inside it
   (`tuning`), then the model is refitted on the whole train part (`pipeline`). The time of
   this step is `train_seconds`.
4. For every user with train rows, recommend k = 10 items that are not in that user's train
   rows, from the items seen in training (items known only from the items CSV fill a list
   only when nothing else is left).
5. Score with `metrics.ranking_metrics` against the test part, relevance = presence in it.
   Users with test rows but no train rows get no list and are not evaluated; test rows of
   items absent from training stay relevant (no model can hit them) unless
   `drop_unknown_items` is set. Both counts are reported.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from reelscale.recs.data import Interactions, ItemFeatures, load_interactions, load_items
from reelscale.recs.errors import DataError
from reelscale.recs.metrics import NO_ITEM, ranking_metrics
from reelscale.recs.pipeline import FitConfig, FittedRecommender, ModelName, fit_recommender
from reelscale.recs.split import GroupBy, stratified_split


def topk(
    train_csv: str | Path,
    items_csv: str | Path | None,
    k: int,
    out_csv: str | Path,
    *,
    model: ModelName = "auto",
    seed: int = 42,
) -> dict[str, Any]:
    """Write `user,item,rank` rows: k items per user, none from that user's training rows."""
    if k < 1:
        raise DataError("k must be at least 1")
    train, items = _load(train_csv, items_csv)
    fitted = fit_recommender(train, items, FitConfig(model=model, seed=seed))
    users = np.arange(train.n_users)
    lists = fitted.recommend(users, k)
    rows = _write_lists(Path(out_csv), train, users, lists)
    short = int((lists == NO_ITEM).any(axis=1).sum())
    return {
        "users": int(train.n_users),
        "rows": rows,
        "k": k,
        "users_with_short_lists": short,
        **_model_report(fitted),
    }


def evaluate(
    interactions_csv: str | Path,
    items_csv: str | Path | None = None,
    *,
    model: ModelName = "auto",
    k: int = 10,
    ratio: float = 0.75,
    seed: int = 42,
    stratify: GroupBy = "user",
    min_count: int = 1,
    drop_unknown_items: bool = False,
) -> dict[str, Any]:
    """Split, fit on the train part, and report ranking metrics on the test part."""
    data, items = _load(interactions_csv, items_csv)
    train, test = stratified_split(data, ratio=ratio, seed=seed, by=stratify, min_count=min_count)
    started = time.perf_counter()
    fitted = fit_recommender(train, items, FitConfig(model=model, seed=seed))
    train_seconds = time.perf_counter() - started
    has_train = np.bincount(train.users, minlength=data.n_users) > 0
    item_known = np.bincount(train.items, minlength=data.n_items) > 0
    unknown_rows = ~item_known[test.items]
    if drop_unknown_items:
        test = test.subset(~unknown_rows)
    users = np.flatnonzero(has_train)
    lists = np.full((data.n_users, k), NO_ITEM, dtype=np.int64)
    lists[users] = fitted.recommend(users, k)
    metrics = ranking_metrics(lists, test.matrix(), k)
    evaluated = int(metrics.pop("users"))
    test_users = np.bincount(test.users, minlength=data.n_users) > 0
    return {
        **{name: round(value, 6) for name, value in metrics.items()},
        "train_seconds": round(train_seconds, 3),
        **_model_report(fitted),
        "users_evaluated": evaluated,
        "test_users_without_train_rows": int((test_users & ~has_train).sum()),
        "test_rows_of_items_unknown_in_train": int(unknown_rows.sum()),
        "interactions": len(data),
        "train_rows": len(train),
        "test_rows": len(test),
        "protocol": {
            "split": f"stratified by {stratify}, {ratio:g} train, seed {seed}, "
            f"min {min_count} rows per {stratify}",
            "relevance": "binary: the (user, item) pair is in the test part",
            "k": k,
            "unknown_items": "dropped from the test part" if drop_unknown_items else "kept",
        },
    }


def _load(
    interactions_csv: str | Path, items_csv: str | Path | None
) -> tuple[Interactions, ItemFeatures | None]:
    data = load_interactions(interactions_csv)
    if items_csv is None:
        return data, None
    catalog = load_items(items_csv)
    data = data.with_items(catalog.item_ids)
    return data, catalog.features(data.item_ids)


def _model_report(fitted: FittedRecommender) -> dict[str, Any]:
    return {
        "model": fitted.name,
        "params": fitted.params,
        "validation": {k: round(v, 6) for k, v in fitted.validation.items()},
    }


def _write_lists(path: Path, train: Interactions, users: Any, lists: Any) -> int:
    """Write atomically: a temporary file beside the target, renamed over it when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    rows = 0
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["user", "item", "rank"])
            for user, items in zip(users, lists, strict=True):
                for rank, item in enumerate(items[items != NO_ITEM], start=1):
                    writer.writerow([train.user_ids[user], train.item_ids[item], rank])
                    rows += 1
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rows
