"""A recommender fitted end to end from training rows: tuning, refit, optional second stage.

`auto` (the default) is EASE as candidate generator with the listwise ranker of `rerank` on
top. Everything is chosen on a holdout carved out of
the training rows (see `tuning`):

1. EASE's weighting (binary or rating), l2 and denoising `drop`, by holdout nDCG@10;
2. the ranker's weights, fitted on the holdout users' candidate lists; the ranker is kept
   only if, cross-fitted over two halves of those users, it beats the tuned EASE there;
3. EASE is refitted on all training rows, and the ranker applied to their lists.

The other names (`ease`, `rp3beta`, `als`, `popularity`) fit that model alone, tuned the
same way, as baselines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from reelscale.recs.data import Interactions, ItemFeatures
from reelscale.recs.metrics import NO_ITEM, hit_matrix
from reelscale.recs.models import EASE, ImplicitALS, Popularity, Recommender, RP3beta, top_k
from reelscale.recs.rerank import Candidates, ListwiseRanker, pair_features
from reelscale.recs.tuning import Holdout, interaction_weights, tune_ease, tune_model
from reelscale.recs.types import BoolArray, Csr, FloatArray, IntArray

ModelName = Literal["auto", "ease", "rp3beta", "als", "popularity"]
MODEL_NAMES: tuple[ModelName, ...] = ("auto", "ease", "rp3beta", "als", "popularity")
Grid = tuple[Callable[..., Recommender], dict[str, tuple[Any, ...]]]
GRIDS: dict[str, Grid] = {
    "rp3beta": (RP3beta, {"alpha": (0.6, 1.0), "beta": (0.2, 0.4, 0.6), "neighbours": (100,)}),
    "als": (ImplicitALS, {"reg": (10.0, 50.0), "alpha": (1.0, 4.0)}),
    "popularity": (Popularity, {}),
}


@dataclass(frozen=True)
class FitConfig:
    model: ModelName = "auto"
    candidates: int = 200
    holdout_ratio: float = 0.75
    seed: int = 42


@dataclass
class FittedRecommender:
    """A fitted model (and ranker) over `train`, able to recommend for its users."""

    name: str
    params: dict[str, Any]
    train: Interactions
    matrix: Csr
    model: Recommender
    items: ItemFeatures | None = None
    ranker: ListwiseRanker | None = None
    candidates: int = 200
    validation: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def recommend(self, users: IntArray, k: int, batch: int = 1024) -> IntArray:
        """users x k item indices, best first, none from that user's training rows."""
        seen = (self.matrix != 0).tocsr()
        cold = np.flatnonzero(np.diff(seen.tocsc().indptr) == 0)
        lists = [
            self._recommend(users[start : start + batch], seen, cold, k)
            for start in range(0, len(users), batch)
        ]
        return np.concatenate(lists) if lists else np.zeros((0, k), dtype=np.int64)

    def _recommend(self, users: IntArray, seen: Csr, cold: IntArray, k: int) -> IntArray:
        scores = self.model.scores(users)
        if self.ranker is None:
            return top_k(scores, seen[users], k, cold)
        candidates = _candidates(users, scores, seen[users], cold, max(self.candidates, k))
        features, _ = pair_features(self.train, candidates, self.items)
        return _reorder(candidates, self.ranker.predict(features))[:, :k]


def fit_recommender(
    train: Interactions, items: ItemFeatures | None = None, config: FitConfig | None = None
) -> FittedRecommender:
    """Tune on a holdout inside `train`, then refit the chosen model on all of `train`."""
    config = config or FitConfig()
    started = time.perf_counter()
    holdout = Holdout.of(train, ratio=config.holdout_ratio, seed=config.seed + 1)
    if config.model in ("auto", "ease"):
        params, trials = tune_ease(holdout)
        model: Recommender = EASE(l2=params["l2"], drop=params["drop"])
    else:
        build, grid = GRIDS[config.model]
        params, trials = tune_model(holdout, build, grid)
        model = build(**_without_weighting(params))
    validation = {"ndcg_at_10": max(t.ndcg for t in trials), "trials": float(len(trials))}
    matrix = train.matrix(interaction_weights(train, params["weighting"]))
    fitted = FittedRecommender(
        name=model.name,
        params=params,
        train=train,
        matrix=matrix,
        model=model,
        items=items,
        candidates=config.candidates,
        validation=validation,
    )
    if config.model == "auto":
        _add_ranker(fitted, holdout)
    model.fit(matrix)
    fitted.seconds = time.perf_counter() - started
    return fitted


def _add_ranker(fitted: FittedRecommender, holdout: Holdout) -> None:
    """Fit the second stage on the holdout and keep it if it beats the first stage there."""
    params = fitted.params
    model = EASE(l2=params["l2"], drop=params["drop"])
    model.fit(holdout.fit.matrix(interaction_weights(holdout.fit, params["weighting"])))
    seen = holdout.matrix[holdout.users]
    cold = np.flatnonzero(np.diff(holdout.matrix.tocsc().indptr) == 0)
    scores = model.scores(holdout.users)
    candidates = _candidates(holdout.users, scores, seen, cold, fitted.candidates)
    relevant = hit_matrix(candidates.items, holdout.truth)
    features, names = pair_features(holdout.fit, candidates, fitted.items)
    reordered = _reorder(candidates, _cross_fitted(features, relevant, names))
    ranked = np.full(scores.shape, -np.inf)
    positions = -np.arange(reordered.shape[1], dtype=np.float64)
    np.put_along_axis(ranked, np.maximum(reordered, 0), positions, axis=1)
    fitted.validation["ranked_ndcg_at_10"] = holdout.ndcg(ranked)
    if fitted.validation["ranked_ndcg_at_10"] <= fitted.validation["ndcg_at_10"]:
        return
    ranker = ListwiseRanker(names)
    ranker.fit(features, relevant)
    fitted.ranker = ranker
    fitted.name = "ease+ranker"
    fitted.params = params | {"ranker_weights": ranker.named_weights()}


def _cross_fitted(features: FloatArray, relevant: BoolArray, names: tuple[str, ...]) -> FloatArray:
    """Ranker scores for each half of the users from a ranker fitted on the other half."""
    halves = np.arange(features.shape[0]) % 2 == 0
    predicted = np.zeros(relevant.shape)
    for part in (halves, ~halves):
        half = ListwiseRanker(names)
        half.fit(features[~part], relevant[~part])
        predicted[part] = half.predict(features[part])
    return predicted


def _candidates(
    users: IntArray, scores: FloatArray, seen: Csr, cold: IntArray, n: int
) -> Candidates:
    items = top_k(scores, seen, n, cold)
    picked = np.take_along_axis(scores, np.maximum(items, 0), axis=1)
    # Padding slots (-1) copy the user's lowest real score; they are never recommended.
    lowest = np.nanmin(np.where(items == NO_ITEM, np.nan, picked), axis=1, keepdims=True)
    picked = np.where(items == NO_ITEM, lowest, picked)
    return Candidates(users=users, items=items, scores=picked)


def _reorder(candidates: Candidates, predicted: FloatArray) -> IntArray:
    """Candidates sorted by the ranker's scores, padding (-1) last."""
    predicted = np.where(candidates.items == NO_ITEM, -np.inf, predicted)
    order = np.argsort(-predicted, axis=1, kind="stable")
    return np.take_along_axis(candidates.items, order, axis=1)


def _without_weighting(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "weighting"}
