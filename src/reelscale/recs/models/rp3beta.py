"""RP3beta (Paudel et al., 2017): three-step random walks, popularity-discounted.

The walk item -> user -> item uses transition probabilities raised to `alpha`; the landing
item's score is divided by its popularity to the power `beta`, which lifts the long tail.
Each item keeps its `neighbours` strongest links. Scores are X_u W.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from reelscale.recs.models.base import check_dense_size
from reelscale.recs.types import Csr, FloatArray, IntArray


class RP3beta:
    name = "rp3beta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, neighbours: int = 200) -> None:
        if alpha <= 0 or beta < 0 or neighbours < 1:
            raise ValueError("RP3beta needs alpha > 0, beta >= 0 and neighbours >= 1")
        self.alpha = alpha
        self.beta = beta
        self.neighbours = neighbours
        self._matrix: Csr = None
        self.weights: Csr = None

    def fit(self, matrix: Csr) -> None:
        n_items = matrix.shape[1]
        check_dense_size(n_items, "RP3beta")
        self._matrix = matrix.tocsr()
        binary = (self._matrix != 0).astype(np.float64)
        user_to_item = _row_normalised(binary).power(self.alpha)
        item_to_user = _row_normalised(binary.T.tocsr()).power(self.alpha)
        walks = np.asarray((item_to_user @ user_to_item).toarray())
        popularity = np.diff(binary.tocsc().indptr).astype(np.float64)
        walks /= np.power(np.maximum(popularity, 1.0), self.beta)
        np.fill_diagonal(walks, 0.0)
        keep = min(self.neighbours, n_items)
        if keep < n_items:
            weakest = np.argpartition(-walks, keep, axis=1)[:, keep:]
            np.put_along_axis(walks, weakest, 0.0, axis=1)
        self.weights = sp.csr_matrix(walks)

    def scores(self, users: IntArray) -> FloatArray:
        return np.asarray((self._matrix[users] @ self.weights).toarray())

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "neighbours": self.neighbours}


def _row_normalised(matrix: Csr) -> Csr:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.diags(scale) @ matrix
