"""Ranking metrics as Microsoft Recommenders' `python_evaluation` defines them.

Relevance is binary: an item is relevant to a user when the (user, item) pair is in the test
part, whatever its rating. For each user the model returns an ordered list of k items
(ranks r = 1..k); `hits` are the ranks whose item is relevant and `R` is the number of the
user's test items (all of them, including items the model has never seen in training, which
it can never hit -- Recommenders counts them too).

    precision@k  = |hits| / k
    recall@k     = |hits| / R
    nDCG@k       = sum over hits of 1/ln(1+r)  /  sum for i = 1..min(R, k) of 1/ln(1+i)
    MAP          = (sum over the j-th hit, at rank r, of j / r) / R           -- `map`
    MAP@k        = (sum over the j-th hit, at rank r, of j / r) / min(R, k)   -- `map_at_k`

Each is averaged over the evaluated users: those with at least one test item and a
recommendation list (Recommenders' "common users" of truth and prediction). Users with no
hit count as 0. Recommenders' benchmark table reports `map` in its MAP column (its current
`benchmark_utils` calls `map`; older versions called `map_at_k` when that function still
had today's `map` formula), so `MAP` here is `map`, and `MAP@k` is reported beside it.
"""

from __future__ import annotations

import numpy as np

from reelscale.recs.types import BoolArray, Csr, FloatArray, IntArray

NO_ITEM = -1


def hit_matrix(recommended: IntArray, truth: Csr) -> BoolArray:
    """hits[u, r]: is the item at rank r + 1 of user u's list among u's test items."""
    truth = truth.tocsr()
    n_users, n_items = truth.shape
    test_users = np.repeat(np.arange(n_users), np.diff(truth.indptr))
    keys = np.sort(test_users * n_items + truth.indices)
    if len(keys) == 0:
        return np.zeros(recommended.shape, dtype=bool)
    rec_keys = np.arange(n_users)[:, None] * n_items + recommended
    at = np.minimum(np.searchsorted(keys, rec_keys), len(keys) - 1)
    hits: BoolArray = (keys[at] == rec_keys) & (recommended != NO_ITEM)
    return hits


def ranking_metrics(recommended: IntArray, truth: Csr, k: int = 10) -> dict[str, float]:
    """MAP, MAP@k, nDCG@k, Precision@k and Recall@k of `recommended` against `truth`.

    `recommended` is users x (at least k) item indices, best first, padded with -1; row u
    belongs to row u of `truth` (users x items, nonzero = relevant).
    """
    recommended = np.asarray(recommended, dtype=np.int64)[:, :k]
    relevant = np.diff(truth.tocsr().indptr).astype(np.float64)
    has_list = (recommended != NO_ITEM).any(axis=1)
    evaluated = (relevant > 0) & has_list
    n = int(evaluated.sum())
    names = ("map", f"map_at_{k}", f"ndcg_at_{k}", f"precision_at_{k}", f"recall_at_{k}")
    if n == 0:
        return dict.fromkeys(names, 0.0) | {"users": 0.0}
    hits = hit_matrix(recommended, truth)[evaluated]
    relevant = relevant[evaluated]
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    n_hits = hits.sum(axis=1).astype(np.float64)
    # The j-th hit at rank r adds j / r: precision at each hit.
    precision_at_hits = np.where(hits, np.cumsum(hits, axis=1) / ranks, 0.0).sum(axis=1)
    discounts = 1.0 / np.log1p(np.arange(1, k + 1, dtype=np.float64))
    dcg = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(relevant, k).astype(np.int64) - 1]
    values: FloatArray = np.stack(
        [
            precision_at_hits / relevant,
            precision_at_hits / np.minimum(relevant, k),
            dcg / ideal,
            n_hits / k,
            n_hits / relevant,
        ]
    )
    means = values.mean(axis=1)
    return {name: float(v) for name, v in zip(names, means, strict=True)} | {"users": float(n)}
