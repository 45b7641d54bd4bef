"""EASE (Steck, 2019): a closed-form item-item linear autoencoder.

    G = X^T X,  P = (G + Lambda)^-1,  B = I - P diag(1 / diag(P)),  diag(B) = 0
    scores = X_u B

Lambda = l2 * I + drop / (1 - drop) * diag(G). The second term is the emphasised-denoising
variant (EDLAE, Steck 2020): it regularises popular items more, like dropping out a share
`drop` of each user's items during training would; drop = 0 is plain EASE.

`ease_l2_path` scores many l2 values from one eigendecomposition of G, which makes the
validation grid cost about one fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.linalg as la  # type: ignore[import-untyped]

from reelscale.recs.models.base import check_dense_size
from reelscale.recs.types import Csr, FloatArray, IntArray


class EASE:
    name = "ease"

    def __init__(self, l2: float = 500.0, drop: float = 0.0) -> None:
        if l2 <= 0 or not 0.0 <= drop < 1.0:
            raise ValueError("EASE needs l2 > 0 and 0 <= drop < 1")
        self.l2 = l2
        self.drop = drop
        self._matrix: Csr = None
        self.weights: FloatArray = np.zeros((0, 0))

    def fit(self, matrix: Csr) -> None:
        check_dense_size(matrix.shape[1], "EASE")
        self._matrix = matrix.tocsr()
        gram = gram_matrix(self._matrix)
        diagonal = np.diag_indices_from(gram)
        gram[diagonal] += self.l2 + self.drop / (1.0 - self.drop) * gram[diagonal]
        precision = la.inv(gram, overwrite_a=True, check_finite=False)
        weights = precision / -np.diag(precision)
        weights[diagonal] = 0.0
        self.weights = weights

    def scores(self, users: IntArray) -> FloatArray:
        return np.asarray(self._matrix[users] @ self.weights)

    def params(self) -> dict[str, Any]:
        return {"l2": self.l2, "drop": self.drop}


def gram_matrix(matrix: Csr) -> FloatArray:
    """X^T X as a dense float64 array."""
    return np.asarray((matrix.T @ matrix).toarray(), dtype=np.float64)


def ease_l2_path(
    matrix: Csr, users: IntArray, l2_values: Sequence[float]
) -> Iterator[tuple[float, FloatArray]]:
    """(l2, scores of `users`) for each l2 of plain EASE, from one eigendecomposition.

    With G = V diag(w) V^T, P = V diag(1/(w + l2)) V^T. Scores of unseen items are
    -(X_u P)_j / P_jj; seen items get arbitrary values (callers mask them anyway).
    """
    check_dense_size(matrix.shape[1], "EASE")
    eigenvalues, vectors = np.linalg.eigh(gram_matrix(matrix))
    projected = np.asarray(matrix.tocsr()[users] @ vectors)
    squared = vectors * vectors
    for l2 in l2_values:
        inverse = 1.0 / (eigenvalues + l2)
        numerators = (projected * inverse) @ vectors.T
        yield l2, -numerators / (squared @ inverse)
