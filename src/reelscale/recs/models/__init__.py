"""Collaborative models over a users x items matrix: popularity, EASE, RP3beta, implicit ALS.

Each has `fit(matrix)`, `scores(users)` (a dense users x items block for rows of the fitted
matrix) and `params()`; `base.top_k` turns scores into lists that skip seen items.
"""

from __future__ import annotations

from reelscale.recs.models.als import ImplicitALS
from reelscale.recs.models.base import Recommender, top_k
from reelscale.recs.models.ease import EASE
from reelscale.recs.models.popularity import Popularity
from reelscale.recs.models.rp3beta import RP3beta

__all__ = ["EASE", "ImplicitALS", "Popularity", "RP3beta", "Recommender", "top_k"]
