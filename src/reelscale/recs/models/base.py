"""What every collaborative model offers, and top-k selection that skips seen items."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from reelscale.recs.errors import DataError
from reelscale.recs.metrics import NO_ITEM
from reelscale.recs.types import Csr, FloatArray, IntArray

#: Dense item-item models hold n_items^2 floats; past this they would need gigabytes.
MAX_DENSE_ITEMS = 20_000


class Recommender(Protocol):
    name: str

    def fit(self, matrix: Csr) -> None:
        """Learn from a users x items matrix (nonzero = interaction, value = its weight)."""

    def scores(self, users: IntArray) -> FloatArray:
        """Scores of every item for these rows of the fitted matrix (higher is better)."""

    def params(self) -> dict[str, Any]:
        """The hyper-parameters, for reports."""


def check_dense_size(n_items: int, model: str) -> None:
    if n_items > MAX_DENSE_ITEMS:
        raise DataError(
            f"{model} keeps a dense {n_items} x {n_items} item matrix; the limit is "
            f"{MAX_DENSE_ITEMS} items"
        )


def top_k(scores: FloatArray, seen: Csr, k: int, cold: IntArray | None = None) -> IntArray:
    """The k best items per row, best first, never an item of that row of `seen`.

    `cold` items (no training interaction at all) rank below every scored item, so they only
    fill lists that would otherwise be short. Rows with fewer than k eligible items are padded
    with -1. The same scores always give the same lists.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    n_users, n_items = scores.shape
    if cold is not None and len(cold):
        scores[:, cold] = np.finfo(np.float64).min
    seen = seen.tocsr()
    rows = np.repeat(np.arange(n_users), np.diff(seen.indptr))
    scores[rows, seen.indices] = -np.inf
    k = min(k, n_items)
    if k <= 0:
        return np.full((n_users, 0), NO_ITEM, dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n_items else None
    candidates = np.tile(np.arange(n_items), (n_users, 1)) if part is None else part
    picked = np.take_along_axis(scores, candidates, axis=1)
    # lexsort: primary key last -> by score descending, then by item index ascending.
    order = np.lexsort((candidates, -picked), axis=1)[:, :k]
    best = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    best_scores = np.take_along_axis(picked, order, axis=1)
    best[np.isneginf(best_scores)] = NO_ITEM
    return best
