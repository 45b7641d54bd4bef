"""Hyper-parameter choice by validation inside the training rows only.

The training rows are split again with the same stratified splitter (by default 75/25 per
user, a different seed); models are fitted on the first part, scored by nDCG@10 on the
second, and the best setting is refitted on all training rows by the caller. The test rows
of an evaluation are never seen here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, Literal

import numpy as np

from reelscale.recs.data import Interactions
from reelscale.recs.metrics import ranking_metrics
from reelscale.recs.models import EASE, Recommender, top_k
from reelscale.recs.models.ease import ease_l2_path
from reelscale.recs.split import stratified_split
from reelscale.recs.types import Csr, FloatArray, IntArray

Weighting = Literal["binary", "rating"]
VALIDATION_K = 10
EASE_L2 = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
EASE_DROP = (0.1, 0.25, 0.5)


@dataclass(frozen=True)
class Holdout:
    """Training rows split for validation: fit on `fit`, judge on `check`."""

    fit: Interactions
    check: Interactions
    users: IntArray  # users with rows in both parts
    matrix: Csr  # binary users x items of `fit`
    truth: Csr  # binary users x items of `check`, rows = `users`

    @classmethod
    def of(cls, train: Interactions, *, ratio: float = 0.75, seed: int = 4242) -> Holdout:
        fit, check = stratified_split(train, ratio=ratio, seed=seed, by="user")
        in_fit = np.bincount(fit.users, minlength=train.n_users) > 0
        in_check = np.bincount(check.users, minlength=train.n_users) > 0
        users = np.flatnonzero(in_fit & in_check)
        truth = check.matrix().tocsr()[users]
        return cls(fit, check, users, fit.matrix(), truth)

    def ndcg(self, scores: FloatArray) -> float:
        """nDCG@10 on the held-out rows of scores for `users` (seen items skipped)."""
        cold = np.flatnonzero(np.diff(self.matrix.tocsc().indptr) == 0)
        recommended = top_k(scores, self.matrix[self.users], VALIDATION_K, cold)
        return ranking_metrics(recommended, self.truth, VALIDATION_K)[f"ndcg_at_{VALIDATION_K}"]


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    ndcg: float


def interaction_weights(data: Interactions, weighting: Weighting) -> FloatArray:
    """Matrix values: 1 per interaction, or the rating over the mean rating."""
    if weighting == "rating" and data.ratings is not None:
        return np.maximum(data.ratings, 1e-3) / max(float(data.ratings.mean()), 1e-3)
    return np.ones(len(data))


def weightings_for(data: Interactions) -> tuple[Weighting, ...]:
    return ("binary", "rating") if data.ratings is not None else ("binary",)


def tune_ease(
    holdout: Holdout,
    *,
    l2_grid: Sequence[float] = EASE_L2,
    drop_grid: Sequence[float] = EASE_DROP,
) -> tuple[dict[str, Any], list[Trial]]:
    """The best (weighting, l2, drop) of EASE on the holdout, and every trial."""
    trials: list[Trial] = []
    for weighting in weightings_for(holdout.fit):
        matrix = holdout.fit.matrix(interaction_weights(holdout.fit, weighting))
        for l2, scores in ease_l2_path(matrix, holdout.users, l2_grid):
            trials.append(
                Trial({"weighting": weighting, "l2": l2, "drop": 0.0}, holdout.ndcg(scores))
            )
    best = max(trials, key=lambda t: t.ndcg).params
    matrix = holdout.fit.matrix(interaction_weights(holdout.fit, best["weighting"]))
    # The denoising term adds regularisation, so pair it with the same or a smaller l2.
    for drop, l2 in product(drop_grid, (best["l2"], best["l2"] / 4)):
        model = EASE(l2=l2, drop=drop)
        model.fit(matrix)
        params = {"weighting": best["weighting"], "l2": l2, "drop": drop}
        trials.append(Trial(params, holdout.ndcg(model.scores(holdout.users))))
    return max(trials, key=lambda t: t.ndcg).params, trials


def tune_model(
    holdout: Holdout,
    build: Callable[..., Recommender],
    grid: Mapping[str, Iterable[Any]],
    weightings: Sequence[Weighting] | None = None,
) -> tuple[dict[str, Any], list[Trial]]:
    """The best setting of `grid` (and weighting) for models made by `build(**params)`."""
    trials: list[Trial] = []
    names = list(grid)
    for weighting in weightings or weightings_for(holdout.fit):
        matrix = holdout.fit.matrix(interaction_weights(holdout.fit, weighting))
        for values in product(*(grid[n] for n in names)):
            params = dict(zip(names, values, strict=True))
            model = build(**params)
            model.fit(matrix)
            score = holdout.ndcg(model.scores(holdout.users))
            trials.append(Trial({"weighting": weighting, **params}, score))
    return max(trials, key=lambda t: t.ndcg).params, trials
