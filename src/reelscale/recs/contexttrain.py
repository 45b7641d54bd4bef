"""Training the context ranker inside a build, on a time-based holdout of the platform.

Each profile's latest positive interactions (watched, half watched or thumbs up) are held
out; a collaborative model fitted on everything before them proposes candidates; each
held-out title becomes one list whose context is the hour, weekday and device of that
interaction, and whose features come from what the profile did before it. The ranker is
kept only if, fitted on one half of the profiles, it ranks the other half's held-out titles
higher than the collaborative order does, both ways round. Too few lists (a new platform) or
no gain: no ranker, and the report says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from reelscale.recs.context import Context
from reelscale.recs.contextrank import (
    CONTEXT_FEATURES,
    ITEM_FEATURES,
    ContextWeights,
    ItemTable,
    SignalTable,
    Tastes,
    context_features,
    item_features,
    tastes,
)
from reelscale.recs.models import EASE, top_k
from reelscale.recs.rerank import ListwiseRanker
from reelscale.recs.types import BoolArray, FloatArray, IntArray


@dataclass(frozen=True)
class RankerConfig:
    min_positives: int = 4  # a profile needs this many to hold some out
    max_held_out: int = 5
    held_out_share: float = 0.2
    min_lists: int = 40
    min_profiles: int = 10
    max_lists: int = 4000
    min_gain: float = 0.002  # nDCG the ranker must add on held-out profiles to be kept
    l2: float = 200.0
    seed: int = 42


def train(
    table: SignalTable,
    items: ItemTable,
    languages: Sequence[str | None],
    *,
    candidates: int,
    config: RankerConfig | None = None,
) -> tuple[ContextWeights | None, dict[str, float]]:
    """Fit the ranker on a time-based holdout of `table`; None (and why) when it is not kept."""
    config = config or RankerConfig()
    held, cutoff = _latest_positives(table, config)
    report: dict[str, float] = {"context_lists": 0.0, "context_kept": 0.0}
    trained_users = np.unique(table.users[held])
    if len(trained_users) < config.min_profiles or items.n_items < 2:
        return None, report | {"context_profiles": float(len(trained_users))}
    before = table.stamps < cutoff[table.users]
    fit_rows = before & (table.weights > 0)
    matrix = sp.csr_matrix(
        (table.weights[fit_rows], (table.users[fit_rows], table.items[fit_rows])),
        shape=(table.n_users, items.n_items),
    )
    seen = sp.csr_matrix(
        (np.ones(int(before.sum())), (table.users[before], table.items[before])),
        shape=matrix.shape,
    )
    model = EASE(l2=config.l2)
    model.fit(matrix)
    lists = top_k(model.scores(trained_users), seen[trained_users], candidates)
    row_of = {int(u): n for n, u in enumerate(trained_users)}
    stats = tastes(table, before, items)

    picked = _lists(table, held, lists, row_of, config)
    report["context_lists"] = float(len(picked))
    report["context_profiles"] = float(len({table.users[r] for r, _ in picked}))
    if len(picked) < config.min_lists or report["context_profiles"] < config.min_profiles:
        return None, report
    features, relevant, mask, groups = _training_arrays(
        table, items, languages, stats, lists, row_of, picked
    )
    baseline = _ndcg(np.where(mask, -np.arange(mask.shape[1], dtype=np.float64), -np.inf), relevant)
    predicted = np.zeros(relevant.shape)
    names = ITEM_FEATURES + CONTEXT_FEATURES
    for half in (groups, ~groups):
        ranker = ListwiseRanker(names)
        ranker.fit(features[~half], relevant[~half], mask[~half])
        predicted[half] = ranker.predict(features[half])
    ranked = _ndcg(np.where(mask, predicted, -np.inf), relevant)
    report |= {"context_ndcg_collab": round(baseline, 4), "context_ndcg_ranked": round(ranked, 4)}
    if ranked < baseline + config.min_gain:
        return None, report
    ranker = ListwiseRanker(names)
    ranker.fit(features, relevant, mask)
    report["context_kept"] = 1.0
    split = len(ITEM_FEATURES)
    return (
        ContextWeights(
            item=ranker.weights[:split].copy(),
            context=ranker.weights[split:].copy(),
            lift=stats.lift.astype(np.float32),
            report={f"w_{n}": w for n, w in ranker.named_weights().items()},
        ),
        report,
    )


def _latest_positives(table: SignalTable, config: RankerConfig) -> tuple[BoolArray, FloatArray]:
    """Each profile's latest positives (held out), and per profile the earliest of them."""
    positive = np.flatnonzero(table.positive)
    order = positive[np.lexsort((table.stamps[positive], table.users[positive]))]
    users = table.users[order]
    counts = np.bincount(users, minlength=table.n_users)
    ends = np.cumsum(counts)
    from_end = ends[users] - np.arange(len(order))  # 1 for a profile's latest positive
    keep = np.clip(np.rint(counts * config.held_out_share), 1, config.max_held_out)
    chosen = (counts[users] >= config.min_positives) & (from_end <= keep[users])
    held = np.zeros(len(table.users), dtype=bool)
    held[order[chosen]] = True
    cutoff = np.full(table.n_users, np.inf)
    np.minimum.at(cutoff, table.users[held], table.stamps[held])
    return held, cutoff


def _lists(
    table: SignalTable,
    held: BoolArray,
    lists: IntArray,
    row_of: dict[int, int],
    config: RankerConfig,
) -> list[tuple[int, int]]:
    """(signal row, slot of its title in its profile's candidate list) per usable list."""
    picked = []
    for row in np.flatnonzero(held):
        slots = np.flatnonzero(lists[row_of[int(table.users[row])]] == table.items[row])
        if len(slots):
            picked.append((int(row), int(slots[0])))
    if len(picked) > config.max_lists:
        rng = np.random.default_rng(config.seed)
        chosen = np.sort(rng.choice(len(picked), config.max_lists, replace=False))
        picked = [picked[n] for n in chosen]
    return picked


def _training_arrays(
    table: SignalTable,
    items: ItemTable,
    languages: Sequence[str | None],
    stats: Tastes,
    lists: IntArray,
    row_of: dict[int, int],
    picked: list[tuple[int, int]],
) -> tuple[FloatArray, BoolArray, BoolArray, BoolArray]:
    width = lists.shape[1]
    n_features = len(ITEM_FEATURES) + len(CONTEXT_FEATURES)
    features = np.zeros((len(picked), width, n_features))
    relevant = np.zeros((len(picked), width), dtype=bool)
    mask = np.zeros((len(picked), width), dtype=bool)
    cache: dict[int, FloatArray] = {}
    for n, (row, slot) in enumerate(picked):
        user = int(table.users[row])
        own = lists[row_of[user]]
        own = own[own >= 0]
        if user not in cache:
            cache[user] = item_features(stats, items, user, own, languages[user])
        context = Context(int(table.hours[row]), int(table.weeks[row]), int(table.devices[row]))
        split = len(ITEM_FEATURES)
        features[n, : len(own), :split] = cache[user]
        features[n, : len(own), split:] = context_features(
            items.genres[own], stats.affinity[user], stats.lift, context
        )
        relevant[n, slot] = True
        mask[n, : len(own)] = True
    users = np.array([table.users[row] for row, _ in picked])
    return features, relevant, mask, users % 2 == 0


def _ndcg(scores: FloatArray, relevant: BoolArray) -> float:
    """Mean nDCG of one relevant title per list."""
    target = np.where(relevant, scores, np.nan)
    mine = np.nanmax(target, axis=1)
    above = (scores > mine[:, None]).sum(axis=1)
    return float(np.mean(1.0 / np.log2(above + 2.0)))
