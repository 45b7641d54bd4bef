"""The second stage: features of (user, candidate item) pairs and a listwise linear ranker.

Candidates come from the collaborative model (its top N per user). Each pair gets features
computed from the training rows only:

    score        the collaborative score, and log(1 + its rank among the candidates)
    popularity   log(1 + training interactions of the item)
    mean_rating  the item's shrunk mean rating (when ratings exist)
    window_*     log(1 + interactions of the item within 1, 7 or 30 days of the user's own
                 activity): what was being watched when this user was watching
    launch       log(1 + days from the user's last activity to the item's first
                 interaction): items that appeared after the user left are unlikely
    age          log(1 + days from the item's first interaction to the user's last
                 activity): how new the item was while the user was active
    genre        how much of the user's history shares the item's genres (items CSV)
    year         distance of the item's year from the years the user watches (items CSV)
    extra_*      scores of further collaborative models, when given

Every feature is standardised within each user's candidate list, so only comparisons
between one user's candidates matter -- which is all a ranking needs, and it makes features
from a smaller (validation) training part comparable with those from the full one.

The ranker is a linear softmax over each user's candidates, fitted by L-BFGS to put mass on
the held-out items (a listwise objective, close to what nDCG rewards).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize as opt  # type: ignore[import-untyped]

from reelscale.recs.data import Interactions, ItemFeatures
from reelscale.recs.types import BoolArray, FloatArray, IntArray

DAY = 86_400.0
WINDOWS_DAYS = (1.0, 7.0, 30.0)


@dataclass(frozen=True)
class Candidates:
    users: IntArray  # the users, one row each
    items: IntArray  # users x N item indices, best first
    scores: FloatArray  # users x N collaborative scores


def pair_features(
    train: Interactions,
    candidates: Candidates,
    items: ItemFeatures | None = None,
    extra_scores: dict[str, FloatArray] | None = None,
) -> tuple[FloatArray, tuple[str, ...]]:
    """users x N x F standardised features, and their names."""
    columns: dict[str, FloatArray] = {}
    columns["score"] = candidates.scores
    ranks = np.broadcast_to(np.arange(candidates.items.shape[1]), candidates.items.shape)
    columns["log_rank"] = np.log1p(ranks.astype(np.float64))
    counts = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
    columns["popularity"] = np.log1p(counts)[candidates.items]
    if train.ratings is not None:
        columns["mean_rating"] = _mean_ratings(train, counts)[candidates.items]
    if train.timestamps is not None:
        columns |= _time_features(train, candidates)
    if items is not None:
        columns |= _content_features(train, candidates, items)
    for name, scores in (extra_scores or {}).items():
        columns[f"extra_{name}"] = scores
    names = tuple(columns)
    stacked = np.stack([columns[n] for n in names], axis=-1)
    return _standardise(stacked), names


def _standardise(features: FloatArray) -> FloatArray:
    centred = features - features.mean(axis=1, keepdims=True)
    spread = centred.std(axis=1, keepdims=True)
    standard: FloatArray = np.divide(
        centred, spread, out=np.zeros_like(centred), where=spread > 1e-12
    )
    return standard


def _mean_ratings(train: Interactions, counts: FloatArray) -> FloatArray:
    assert train.ratings is not None
    prior = float(train.ratings.mean())
    sums = np.bincount(train.items, weights=train.ratings, minlength=train.n_items)
    return (sums + 5.0 * prior) / (counts + 5.0)  # shrunk towards the mean by 5 votes


def _time_features(train: Interactions, candidates: Candidates) -> dict[str, FloatArray]:
    assert train.timestamps is not None
    stamps = np.rint(train.timestamps - train.timestamps.min()).astype(np.int64)
    margin = int(max(WINDOWS_DAYS) * DAY)
    stride = int(stamps.max()) + 1 + 2 * margin
    # One sorted key per row, item-major, so a window of one item is a searchsorted range;
    # the margin keeps every window inside its own item's stretch of keys.
    keys = np.sort(train.items * stride + margin + stamps)
    first = np.full(train.n_users, np.iinfo(np.int64).max)
    last = np.full(train.n_users, np.iinfo(np.int64).min)
    np.minimum.at(first, train.users, stamps)
    np.maximum.at(last, train.users, stamps)
    user_first = first[candidates.users][:, None]
    user_last = last[candidates.users][:, None]
    base = candidates.items * stride + margin
    features: dict[str, FloatArray] = {}
    for days in WINDOWS_DAYS:
        reach = int(days * DAY)
        low = np.searchsorted(keys, base + user_first - reach, side="left")
        high = np.searchsorted(keys, base + user_last + reach, side="right")
        features[f"window_{days:g}d"] = np.log1p((high - low).astype(np.float64))
    item_first = np.full(train.n_items, np.iinfo(np.int64).max)
    np.minimum.at(item_first, train.items, stamps)
    gap = (item_first[candidates.items] - user_last).astype(np.float64) / DAY
    features["launch"] = np.log1p(np.maximum(gap, 0.0))
    features["age"] = np.log1p(np.maximum(-gap, 0.0))
    return features


def _content_features(
    train: Interactions, candidates: Candidates, items: ItemFeatures
) -> dict[str, FloatArray]:
    genres = items.genres.tocsr().astype(np.float64)
    features: dict[str, FloatArray] = {}
    if genres.shape[1]:
        history = np.asarray((train.matrix() @ genres).toarray())
        share = (history + 1.0) / (history.sum(axis=1, keepdims=True) + genres.shape[1])
        per_item = np.maximum(np.asarray(genres.sum(axis=1)).ravel(), 1.0)
        affinity = np.asarray((genres @ share[candidates.users].T).T) / per_item
        rows = np.arange(len(candidates.users))[:, None]
        features["genre"] = np.log(affinity[rows, candidates.items] + 1e-6)
    years = items.years
    if np.isfinite(years).any():
        watched = years[train.items]
        known = np.isfinite(watched)
        typical = _grouped_median(train.users[known], watched[known], train.n_users)
        fallback = float(np.nanmedian(years))
        typical = np.where(np.isfinite(typical), typical, fallback)
        item_years = np.where(np.isfinite(years), years, fallback)[candidates.items]
        gap = np.abs(item_years - typical[candidates.users][:, None])
        features["year"] = -np.log1p(gap)
    return features


def _grouped_median(groups: IntArray, values: FloatArray, n_groups: int) -> FloatArray:
    order = np.lexsort((values, groups))
    sorted_groups, sorted_values = groups[order], values[order]
    counts = np.bincount(sorted_groups, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    medians = np.full(n_groups, np.nan)
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    medians[has] = (sorted_values[low] + sorted_values[high]) / 2.0
    return medians


class ListwiseRanker:
    """A linear scorer trained with a per-user softmax (listwise) loss and L2 penalty."""

    def __init__(self, names: tuple[str, ...], l2: float = 1e-3) -> None:
        self.names = names
        self.l2 = l2
        self.weights: FloatArray = np.zeros(len(names))

    def fit(self, features: FloatArray, relevant: BoolArray, mask: BoolArray | None = None) -> None:
        """Fit on lists x slots x features; `mask` marks real slots when lists are padded."""
        useful = relevant.any(axis=1)
        x, y = features[useful], relevant[useful].astype(np.float64)
        real = np.ones(y.shape, dtype=bool) if mask is None else mask[useful]
        targets = y / y.sum(axis=1, keepdims=True)

        def loss(weights: FloatArray) -> tuple[float, FloatArray]:
            logits = np.where(real, x @ weights, -np.inf)
            logits -= logits.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
            log_probs = np.where(real, logits - log_norm, 0.0)  # padding adds no 0 * -inf
            value = -(targets * log_probs).sum() / len(x) + self.l2 * weights @ weights
            residual = np.where(real, np.exp(log_probs), 0.0) - targets
            grad = np.einsum("un,unf->f", residual, x) / len(x) + 2 * self.l2 * weights
            return float(value), grad

        start = np.zeros(features.shape[-1])
        start[0] = 1.0  # begin at the collaborative score alone
        result = opt.minimize(loss, start, jac=True, method="L-BFGS-B")
        self.weights = np.asarray(result.x, dtype=np.float64)

    def predict(self, features: FloatArray) -> FloatArray:
        return np.asarray(features @ self.weights, dtype=np.float64)

    def named_weights(self) -> dict[str, float]:
        return {n: round(float(w), 4) for n, w in zip(self.names, self.weights, strict=True)}
