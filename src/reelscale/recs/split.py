"""The stratified random split of Microsoft Recommenders (`python_stratified_split`).

Exactly, for `stratified_split(data, ratio=0.75, seed=42, by="user", min_count=1)`:

1. If `min_count > 1`, drop every row whose user (or item, with `by="item"`) has fewer than
   `min_count` rows.
2. Draw one uniform number per remaining row, in row (file) order, from
   `numpy.random.RandomState(seed).rand(n)` -- the legacy generator Recommenders seeds with
   `np.random.seed(seed)`, so the same rows in the same order split identically.
3. Within each group (user, or item), order the rows by that number; the row at position
   p = 1..n gets the fraction p / n.
4. Rows with p / n <= ratio go to train, the rest to test. A group of n rows thus puts
   floor(ratio * n) rows in train: 20 rows -> 15 / 5, 3 rows -> 2 / 1, and a group with a
   single row puts it in test.

Nothing else is removed here: items that end up only in the test part, and users whose
rows all went to test, stay in the test part; `metrics` and `offline` say how they count.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from reelscale.recs.data import Interactions
from reelscale.recs.errors import DataError

GroupBy = Literal["user", "item"]


def stratified_split(
    data: Interactions,
    *,
    ratio: float = 0.75,
    seed: int = 42,
    by: GroupBy = "user",
    min_count: int = 1,
) -> tuple[Interactions, Interactions]:
    """Split each user's (or item's) rows at random, `ratio` of them into train."""
    if not 0.0 < ratio < 1.0:
        raise DataError(f"the split ratio must lie strictly between 0 and 1, not {ratio}")
    if min_count < 1:
        raise DataError(f"min_count must be at least 1, not {min_count}")
    groups = data.users if by == "user" else data.items
    if min_count > 1:
        counts = np.bincount(groups)
        data = data.subset(counts[groups] >= min_count)
        groups = data.users if by == "user" else data.items
    # Legacy MT19937 on purpose: it reproduces Recommenders' split of the same rows.
    draws = np.random.RandomState(seed).rand(len(data))
    order = np.lexsort((draws, groups))
    sorted_groups = groups[order]
    counts = np.bincount(sorted_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(data)) - starts[sorted_groups] + 1
    fraction = np.empty(len(data))
    fraction[order] = position / counts[sorted_groups]
    in_train = fraction <= ratio
    return data.subset(in_train), data.subset(~in_train)
