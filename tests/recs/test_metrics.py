"""The ranking metrics against hand-computed values (Microsoft Recommenders' formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from reelscale.recs.metrics import ranking_metrics

LN = math.log


def truth_matrix(rows: list[list[int]], n_items: int = 6) -> sp.csr_matrix:
    data = [(u, i) for u, items in enumerate(rows) for i in items]
    users, items = zip(*data, strict=True)
    return sp.csr_matrix((np.ones(len(data)), (users, items)), shape=(len(rows), n_items))


def test_three_users_by_hand() -> None:
    truth = truth_matrix([[1, 3, 5], [0], [0, 1, 2, 3, 4], [], [2]])
    recommended = np.array(
        [
            [1, 2, 3],  # hits at ranks 1 and 3 of R = 3
            [4, 0, 2],  # hit at rank 2 of R = 1
            [5, 4, 2],  # hits at ranks 2 and 3 of R = 5 (more than k)
            [0, 1, 2],  # no test items: not evaluated
            [-1, -1, -1],  # no list: not evaluated
        ]
    )
    got = ranking_metrics(recommended, truth, k=3)

    assert got["users"] == 3
    assert got["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    assert got["recall_at_3"] == pytest.approx((2 / 3 + 1 + 2 / 5) / 3)
    # MAP ("map"): sum of j/rank over hits, divided by R.
    ap = [(1 + 2 / 3) / 3, (1 / 2) / 1, (1 / 2 + 2 / 3) / 5]
    assert got["map"] == pytest.approx(sum(ap) / 3)
    # MAP@k ("map_at_k"): the same sums divided by min(R, k).
    ap_at_k = [(1 + 2 / 3) / 3, (1 / 2) / 1, (1 / 2 + 2 / 3) / 3]
    assert got["map_at_3"] == pytest.approx(sum(ap_at_k) / 3)
    ideal3 = 1 / LN(2) + 1 / LN(3) + 1 / LN(4)
    ndcg = [
        (1 / LN(2) + 1 / LN(4)) / ideal3,
        (1 / LN(3)) / (1 / LN(2)),
        (1 / LN(3) + 1 / LN(4)) / ideal3,
    ]
    assert got["ndcg_at_3"] == pytest.approx(sum(ndcg) / 3)


def test_perfect_and_empty_lists() -> None:
    truth = truth_matrix([[0, 1], [2]])
    perfect = ranking_metrics(np.array([[1, 0, 5], [2, 3, 4]]), truth, k=3)
    assert perfect["ndcg_at_3"] == pytest.approx(1.0)
    assert perfect["recall_at_3"] == pytest.approx(1.0)
    assert perfect["map"] == pytest.approx(1.0)
    assert perfect["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    misses = ranking_metrics(np.array([[3, 4, 5], [0, 1, 3]]), truth, k=3)
    assert all(v == 0.0 for k, v in misses.items() if k != "users")
    nobody = ranking_metrics(np.full((2, 3), -1), truth, k=3)
    assert nobody["users"] == 0
    assert nobody["ndcg_at_3"] == 0.0


def test_only_the_first_k_count() -> None:
    truth = truth_matrix([[4]])
    assert ranking_metrics(np.array([[0, 1, 4]]), truth, k=2)["recall_at_2"] == 0.0
    assert ranking_metrics(np.array([[0, 1, 4]]), truth, k=3)["recall_at_3"] == 1.0
