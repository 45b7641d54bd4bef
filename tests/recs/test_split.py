"""The stratified splitter: per-group 75/25, deterministic by seed, nobody lost."""

from __future__ import annotations

import numpy as np
import pytest

from reelscale.recs.data import Interactions
from reelscale.recs.errors import DataError
from reelscale.recs.split import stratified_split
from reelscale.recs.synthetic import SyntheticData


def rows_of(data: Interactions) -> set[tuple[int, int]]:
    return set(zip(data.users.tolist(), data.items.tolist(), strict=True))


def test_each_user_keeps_floor_of_three_quarters_in_train(small: SyntheticData) -> None:
    data = small.interactions
    train, test = stratified_split(data, ratio=0.75, seed=42)
    total = np.bincount(data.users, minlength=data.n_users)
    in_train = np.bincount(train.users, minlength=data.n_users)
    assert np.array_equal(in_train, np.floor(0.75 * total).astype(int))
    assert np.array_equal(np.bincount(test.users, minlength=data.n_users), total - in_train)
    assert rows_of(train) | rows_of(test) == rows_of(data)
    assert not rows_of(train) & rows_of(test)
    assert set(train.users.tolist()) == set(data.users.tolist())  # no user lost


def test_small_groups() -> None:
    users = np.array([0] * 20 + [1] * 3 + [2] * 2 + [3])
    data = Interactions(
        user_ids=("a", "b", "c", "d"),
        item_ids=tuple(str(i) for i in range(20)),
        users=users,
        items=np.concatenate([np.arange(20), np.arange(3), np.arange(2), [0]]),
    )
    train, test = stratified_split(data, seed=1)
    assert np.bincount(train.users, minlength=4).tolist() == [15, 2, 1, 0]
    assert np.bincount(test.users, minlength=4).tolist() == [5, 1, 1, 1]
    kept, _ = stratified_split(data, seed=1, min_count=3)
    assert set(kept.users.tolist()) == {0, 1}


def test_same_seed_same_split_other_seed_other_split(small: SyntheticData) -> None:
    data = small.interactions
    first, _ = stratified_split(data, seed=42)
    again, _ = stratified_split(data, seed=42)
    other, _ = stratified_split(data, seed=43)
    assert rows_of(first) == rows_of(again)
    assert rows_of(first) != rows_of(other)


def test_matches_the_reference_procedure(small: SyntheticData) -> None:
    """Recommenders' algorithm restated: RandomState draws in row order, rank within user."""
    data = small.interactions
    draws = np.random.RandomState(42).rand(len(data))
    expected = set()
    for user in range(data.n_users):
        mine = np.flatnonzero(data.users == user)
        ordered = mine[np.argsort(draws[mine], kind="stable")]
        for position, row in enumerate(ordered, start=1):
            if position / len(ordered) <= 0.75:
                expected.add((user, int(data.items[row])))
    train, _ = stratified_split(data, ratio=0.75, seed=42)
    assert rows_of(train) == expected


def test_by_item(small: SyntheticData) -> None:
    data = small.interactions
    train, _ = stratified_split(data, by="item")
    total = np.bincount(data.items, minlength=data.n_items)
    in_train = np.bincount(train.items, minlength=data.n_items)
    assert np.array_equal(in_train, np.floor(0.75 * total).astype(int))


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5])
def test_refuses_bad_ratios(small: SyntheticData, ratio: float) -> None:
    with pytest.raises(DataError, match="ratio"):
        stratified_split(small.interactions, ratio=ratio)
