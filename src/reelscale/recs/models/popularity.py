"""Most popular items first: the floor every personalised model must clear."""

from __future__ import annotations

from typing import Any

import numpy as np

from reelscale.recs.types import Csr, FloatArray, IntArray


class Popularity:
    name = "popularity"

    def __init__(self) -> None:
        self._counts: FloatArray = np.zeros(0)

    def fit(self, matrix: Csr) -> None:
        self._counts = np.diff(matrix.tocsc().indptr).astype(np.float64)

    def scores(self, users: IntArray) -> FloatArray:
        return np.broadcast_to(self._counts, (len(users), len(self._counts))).copy()

    def params(self) -> dict[str, Any]:
        return {}
