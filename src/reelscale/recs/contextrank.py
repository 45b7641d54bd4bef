"""The context-aware second stage of the platform model: who, what, and when and where.

A profile's candidates (from the collaborative model, best first) are re-ordered per request
by a linear listwise ranker over two groups of features, each standardised within the list:

    item (fixed per profile, scored at build time into one number per candidate)
        collab       -log(1 + rank) in the collaborative list
        popularity   catalog popularity blended with the platform's own plays
        genre        the profile's affinity for the title's genres
        language     the title is in the profile's language
        year         closeness of the release year to the years the profile watches
        maturity     closeness of the maturity level to what the profile watches
        cast         the profile's affinity for the title's cast
    context (scored per request from the hour, week part and device)
        genre_hour, genre_week, genre_device     the profile's own genre affinity in this
                                                 context, shrunk towards its overall one
        platform_hour, platform_week, platform_device
                                                 how much more the whole platform watches
                                                 these genres in this context (a log lift)

It is trained inside each build (`contexttrain`) on the platform's own signals, split by
time, and kept only when it beats the collaborative order on held-out profiles.

At request time only the six context features are computed: the candidates' genre rows
times six affinity vectors, a standardisation and a dot product -- microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from reelscale.recs.context import (
    DEVICE_SLOT,
    HOUR_BUCKETS,
    HOUR_SLOT,
    SLOTS,
    UNKNOWN_DEVICE,
    WEEK_SLOT,
    Context,
)
from reelscale.recs.types import BoolArray, Csr, FloatArray, IntArray

ITEM_FEATURES = ("collab", "popularity", "genre", "language", "year", "maturity", "cast")
CONTEXT_FEATURES = (
    "genre_hour", "genre_week", "genre_device", "platform_hour", "platform_week",
    "platform_device",
)  # fmt: skip
PROFILE_PRIOR = 3.0  # pseudo-interactions pulling a context's affinity to the overall one
PLATFORM_PRIOR = 50.0  # the same for the platform-wide lift
NEAR_DISLIKED = 3  # a thumbs-down also demotes this many of the title's closest neighbours


@dataclass(frozen=True)
class SignalTable:
    """The build's signal rows as arrays, one row per (profile, title)."""

    users: IntArray
    items: IntArray
    weights: FloatArray  # `snapshot.signal_weight`; 0 for a thumbs down
    stamps: FloatArray
    hours: IntArray
    weeks: IntArray
    devices: IntArray
    positive: BoolArray
    n_users: int


@dataclass(frozen=True)
class ItemTable:
    genres: FloatArray  # items x genres, each row summing to 1 (or 0 without genres)
    cast: Csr  # items x people, 0/1
    years: FloatArray  # NaN unknown
    maturity: FloatArray
    languages: tuple[str, ...]
    editorial: FloatArray  # catalog popularity, log-scaled to [0, 1]

    @property
    def n_items(self) -> int:
        return len(self.languages)


@dataclass(frozen=True)
class Tastes:
    """What a set of rows says about each profile (and the platform), for the features."""

    affinity: FloatArray  # users x SLOTS x genres
    cast: Csr  # users x items: the profile's cast affinity for each title (CSR)
    year: FloatArray  # per user
    maturity: FloatArray  # per user
    lift: FloatArray  # SLOTS x genres, platform log lift (row 0 is zero)
    popularity: FloatArray  # per item


@dataclass(frozen=True, eq=False)
class ContextWeights:
    """The trained ranker as serving needs it: context weights and the platform lifts."""

    item: FloatArray
    context: FloatArray
    lift: FloatArray  # SLOTS x genres
    report: dict[str, float] = field(default_factory=dict)

    @property
    def slot_weights(self) -> FloatArray:
        """The learnt weights of genre affinity overall, at this hour, in this week part and
        on this device: how much each part of the context matters."""
        genre = ITEM_FEATURES.index("genre")
        return np.array([self.item[genre], *self.context[:3]])


def tastes(table: SignalTable, rows: BoolArray, items: ItemTable) -> Tastes:
    """Affinities from the `rows` of `table` that say the profile liked the title."""
    use = rows & (table.weights > 0)
    users, cols, weights = table.users[use], table.items[use], table.weights[use]
    n_genres = items.genres.shape[1]
    counts = np.zeros((table.n_users, SLOTS, n_genres))
    spread = items.genres[cols] * weights[:, None]
    np.add.at(counts, (users, np.zeros_like(users)), spread)
    # A three-hour bucket also lends half its weight to each neighbour, so an evening that
    # straddles a bucket edge is still one evening.
    for shift, share in ((0, 0.5), (-1, 0.25), (1, 0.25)):
        hours = (table.hours[use] + shift) % HOUR_BUCKETS
        np.add.at(counts, (users, HOUR_SLOT + hours), spread * share)
    np.add.at(counts, (users, WEEK_SLOT + table.weeks[use]), spread)
    known = table.devices[use] != UNKNOWN_DEVICE
    np.add.at(counts, (users[known], DEVICE_SLOT + table.devices[use][known]), spread[known])
    affinity = _shrunk_shares(counts, PROFILE_PRIOR)

    platform = counts.sum(axis=0)
    shares = _shrunk_shares(platform[None], PLATFORM_PRIOR)[0]
    overall = shares[0]
    lift = np.log(np.maximum(shares, 1e-9) / np.maximum(overall, 1e-9))
    lift[:, overall <= 0] = 0.0
    lift[0] = 0.0

    liked = sp.csr_matrix((weights, (users, cols)), shape=(table.n_users, items.n_items))
    people = _normalise_rows(liked @ items.cast)  # users x people, rows summing to 1
    fallback_year = float(np.nanmedian(items.years)) if np.isfinite(items.years).any() else 0.0
    return Tastes(
        affinity=affinity,
        cast=(people @ items.cast.T).tocsr(),
        year=_weighted_mean(users, items.years[cols], weights, table.n_users, fallback_year),
        maturity=_weighted_mean(
            users, items.maturity[cols], weights, table.n_users, float(np.mean(items.maturity))
        ),
        lift=lift,
        popularity=_popularity(items, cols),
    )


def item_features(
    tastes: Tastes, items: ItemTable, user: int, candidates: IntArray, language: str | None
) -> FloatArray:
    """candidates x ITEM_FEATURES, standardised within the list."""
    n = len(candidates)
    years = np.where(np.isfinite(items.years), items.years, tastes.year[user])[candidates]
    columns = (
        -np.log1p(np.arange(n, dtype=np.float64)),
        tastes.popularity[candidates],
        items.genres[candidates] @ tastes.affinity[user, 0],
        np.array([items.languages[i] == language for i in candidates], dtype=np.float64),
        -np.log1p(np.abs(years - tastes.year[user])),
        -np.abs(items.maturity[candidates] - tastes.maturity[user]) / 18.0,
        tastes.cast[user].toarray().ravel()[candidates],
    )
    return standardise(np.stack(columns, axis=1))


def context_features(
    genres: FloatArray, affinity: FloatArray, lift: FloatArray, context: Context
) -> FloatArray:
    """candidates x CONTEXT_FEATURES, standardised within the list. `genres` holds the
    candidates' genre rows; `affinity` is the profile's SLOTS x genres table."""
    hour, week, device = context.slots
    # An unknown device gives a constant column, which standardises to zero: no say.
    mine = affinity[0] * 0 if device is None else affinity[device]
    platform = lift[0] * 0 if device is None else lift[device]
    vectors = np.stack(
        (affinity[hour], affinity[week], mine, lift[hour], lift[week], platform), axis=1
    )
    return standardise(genres @ vectors)


def standardise(features: FloatArray) -> FloatArray:
    centred = features - features.mean(axis=0, keepdims=True)
    spread = centred.std(axis=0, keepdims=True)
    out: FloatArray = np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 1e-9)
    return out


def rank(
    candidates: IntArray,
    base: FloatArray,
    genres: FloatArray,
    affinity: FloatArray,
    weights: ContextWeights,
    context: Context,
) -> IntArray:
    """The candidates re-ordered for `context`: best first.

    The same scores as standardising `context_features` within the list, minus the centring:
    a shift shared by every candidate changes no order, and skipping it saves a third of the
    request's numpy calls."""
    hour, week, device = context.slots
    slots = [hour, week, hour if device is None else device]
    vectors = np.concatenate((affinity[slots], weights.lift[slots]))
    if device is None:
        vectors[[2, 5]] = 0.0  # an unknown device has no say
    features = genres[candidates] @ vectors.T
    spread = features.std(axis=0)
    scale = np.divide(weights.context, spread, out=np.zeros(len(spread)), where=spread > 1e-9)
    scores = base + features @ scale
    return candidates[np.argsort(-scores, kind="stable")]


def _shrunk_shares(counts: FloatArray, prior: float) -> FloatArray:
    """Rows of genre counts as shares, each context row shrunk towards the overall row."""
    totals = counts.sum(axis=-1, keepdims=True)
    overall = np.divide(
        counts[:, :1], totals[:, :1], out=np.zeros_like(counts[:, :1]), where=totals[:, :1] > 0
    )
    shares: FloatArray = (counts + prior * overall) / np.maximum(totals + prior, 1e-9)
    shares[:, :1] = overall
    return shares


def _normalise_rows(matrix: Csr) -> Csr:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return (sp.diags(scale) @ matrix).tocsr()


def _weighted_mean(
    groups: IntArray, values: FloatArray, weights: FloatArray, n: int, fallback: float
) -> FloatArray:
    known = np.isfinite(values)
    sums = np.bincount(groups[known], weights=values[known] * weights[known], minlength=n)
    totals = np.bincount(groups[known], weights=weights[known], minlength=n)
    out: FloatArray = np.full(n, fallback)
    np.divide(sums, totals, out=out, where=totals > 0)
    return out


def _popularity(items: ItemTable, played: IntArray) -> FloatArray:
    plays = np.log1p(np.bincount(played, minlength=items.n_items).astype(np.float64))
    out: FloatArray = items.editorial + plays / max(float(plays.max(initial=0.0)), 1e-9)
    return out
