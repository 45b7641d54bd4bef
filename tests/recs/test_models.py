"""The collaborative models find planted structure; top-k never repeats what a user saw."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from reelscale.recs.metrics import ranking_metrics
from reelscale.recs.models import EASE, ImplicitALS, Popularity, Recommender, RP3beta, top_k
from reelscale.recs.models.ease import ease_l2_path
from reelscale.recs.split import stratified_split
from reelscale.recs.synthetic import SyntheticData


def ndcg(model: Recommender, small: SyntheticData) -> float:
    train, test = stratified_split(small.interactions)
    matrix = train.matrix()
    model.fit(matrix)
    users = np.arange(matrix.shape[0])
    lists = top_k(model.scores(users), matrix, 10)
    return ranking_metrics(lists, test.matrix(), 10)["ndcg_at_10"]


@pytest.fixture(scope="module")
def popularity_ndcg(small: SyntheticData) -> float:
    return ndcg(Popularity(), small)


def test_ease_recovers_planted_taste_far_better_than_popularity(
    small: SyntheticData, popularity_ndcg: float
) -> None:
    assert popularity_ndcg > 0.05  # popularity is planted too: a real, beatable floor
    assert ndcg(EASE(l2=200.0), small) > popularity_ndcg + 0.1


@pytest.mark.parametrize(
    "model", [RP3beta(alpha=1.0, beta=0.4), ImplicitALS(factors=32, reg=20.0, iterations=8)]
)
def test_baselines_beat_popularity(
    small: SyntheticData, popularity_ndcg: float, model: Recommender
) -> None:
    assert ndcg(model, small) > popularity_ndcg + 0.05


def test_ease_closed_form_and_l2_path_agree(small: SyntheticData) -> None:
    matrix = small.interactions.matrix()
    users = np.arange(20)
    model = EASE(l2=300.0)
    model.fit(matrix)
    assert np.allclose(np.diag(model.weights), 0.0)
    ((_, path_scores),) = list(ease_l2_path(matrix, users, [300.0]))
    unseen = matrix[users].toarray() == 0
    assert np.allclose(model.scores(users)[unseen], path_scores[unseen], atol=1e-8)


def test_top_k_skips_seen_and_pads_short_rows() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 1, 0]]))
    lists = top_k(scores, seen, 3)
    assert lists.tolist() == [[1, 3, 2], [3, -1, -1]]


def test_top_k_puts_cold_items_last() -> None:
    scores = np.array([[5.0, -1.0, -2.0, 9.0]])
    lists = top_k(scores, sp.csr_matrix((1, 4)), 4, cold=np.array([3]))
    assert lists.tolist() == [[0, 1, 2, 3]]
