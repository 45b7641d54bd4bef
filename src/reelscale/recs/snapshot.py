"""`RecsModel`: everything the home page needs, precomputed and immutable.

A build reads the catalog and the signals once, fits the collaborative model and turns it
into short index lists per profile and per item. Requests then only walk lists and check
maturity and availability, so a home page costs well under a millisecond and never needs
the database. A new build replaces the old one as a whole (see `serving`).

Signal weights (the matrix the models learn from), why each:

    watched (>= 90%)       1.0, +0.25 per extra play (rewatching is the strongest yes)
    in progress (5-90%)    0.3 + 0.7 x fraction (partly a yes, growing with the fraction)
    abandoned              0.15: stopped before 90% and untouched for `abandon_days`
    sampled (< 5%)         0.1: it was looked at, which says little
    thumbs up              at least as much as watched, +0.5: the strongest yes there is
    thumbs down            left out, never recommended again, its neighbours demoted

The second stage (`contextrank`) is trained in the same build, on a time-based holdout of
the same signals, and re-orders each profile's candidates per request by hour, week part
and device.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from reelscale.recs import contextrank, contexttrain
from reelscale.recs.context import device_class, hour_bucket, week_part
from reelscale.recs.contextrank import ContextWeights, ItemTable, SignalTable
from reelscale.recs.contexttrain import RankerConfig
from reelscale.recs.data import Interactions, ItemCatalog
from reelscale.recs.models import EASE, top_k
from reelscale.recs.pipeline import FitConfig, fit_recommender
from reelscale.recs.similarity import collaborative_weights, content_matrices, neighbour_lists
from reelscale.recs.sources import ProfileFacts, SignalFacts, TitleFacts
from reelscale.recs.types import Csr, FloatArray, IntArray

RESUME_MIN_FRACTION = 0.05  # the playback service's resume rules
WATCHED_FRACTION = 0.90
DAY = 86_400.0


@dataclass(frozen=True)
class BuildConfig:
    candidates: int = 120  # per profile, ranked; rows draw from these
    neighbours: int = 30  # per item
    tune_min_profiles: int = 50  # below this, plain EASE with `l2` (tuning needs a holdout)
    l2: float = 200.0
    trend_half_life_days: float = 3.0
    trend_horizon_days: float = 30.0
    abandon_days: float = 21.0
    seed: int = 42
    ranker: RankerConfig = field(default_factory=RankerConfig)
    context_ranker: bool = True  # False: the collaborative order alone (and a faster build)


@dataclass(frozen=True)
class Card:
    """What a row shows of a title."""

    id: str
    name: str
    kind: str
    year: int | None
    maturity_level: int
    language: str
    genres: tuple[str, ...]


@dataclass(frozen=True)
class ProgressMark:
    item: int
    fraction: float
    watched: bool
    updated: float  # Unix seconds


@dataclass(frozen=True)
class ProfileState:
    candidates: tuple[int, ...] = ()  # unseen titles, best first
    progress: tuple[ProgressMark, ...] = ()  # most recent first
    disliked: frozenset[int] = frozenset()
    genre_order: tuple[int, ...] = ()  # genre indices by affinity, strongest first
    genre_share: tuple[float, ...] = ()  # affinity share, aligned with genre_order
    language: str | None = None
    picked_titles: tuple[int, ...] = ()
    liked: tuple[int, ...] = ()  # thumbs up, most recent first
    # For the context ranker: the candidates as an array, their item scores (context left
    # out), and the profile's SLOTS x genres affinity table. None when there is no ranker.
    ranking: IntArray | None = field(default=None, compare=False)
    base: FloatArray | None = field(default=None, compare=False)
    affinity: FloatArray | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RecsModel:
    version: int
    trained_at: datetime
    algorithm: str
    item_ids: tuple[str, ...]
    index: dict[str, int]
    cards: tuple[Card, ...]
    maturity: tuple[int, ...]
    available_from: tuple[float, ...]  # -inf: always
    available_until: tuple[float, ...]  # +inf: forever
    durations: tuple[float, ...]  # seconds, 0.0 unknown
    genre_names: tuple[str, ...]
    popular: tuple[int, ...]
    popular_by_language: dict[str, tuple[int, ...]]
    by_genre: tuple[tuple[int, ...], ...]  # per genre, by popularity
    neighbours: tuple[tuple[int, ...], ...]  # collaborative
    similar: tuple[tuple[int, ...], ...]  # collaborative + genre, cast, language
    trend_t0: float
    trend: tuple[float, ...]  # decayed recent plays, as of trend_t0
    trend_tau: float
    item_genres: FloatArray  # items x genres, rows summing to 1 (float32)
    genre_ids: tuple[tuple[int, ...], ...]  # per item, its genres' indices
    context: ContextWeights | None = None  # None: the collaborative order, whatever the hour
    profiles: dict[str, ProfileState] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def signal_weight(signal: SignalFacts, *, fraction: float, now: float, abandon_s: float) -> float:
    """How much one (profile, title) interaction says the profile likes the title."""
    if signal.thumb < 0:
        return 0.0
    if signal.watched or fraction >= WATCHED_FRACTION:
        weight = 1.0 + 0.25 * min(max(signal.plays - 1, 0), 4)
    elif fraction < RESUME_MIN_FRACTION:
        weight = 0.1
    elif now - signal.updated_at.timestamp() > abandon_s:
        weight = 0.15
    else:
        weight = 0.3 + 0.7 * fraction
    return max(weight, 1.0) + 0.5 if signal.thumb > 0 else weight


def is_positive(signal: SignalFacts, fraction: float) -> bool:
    """A held-out title the context ranker should rank high: liked, or mostly watched."""
    if signal.thumb < 0:
        return False
    return signal.thumb > 0 or signal.watched or fraction >= 0.5


def empty_model(now: datetime) -> RecsModel:
    """The model served before the first build finishes: no titles, so empty rows."""
    return build_model(titles=[], signals=[], profiles=[], now=now, version=0)


def build_model(
    *,
    titles: Sequence[TitleFacts],
    signals: Sequence[SignalFacts],
    profiles: Sequence[ProfileFacts],
    now: datetime,
    version: int,
    config: BuildConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> RecsModel:
    """Fit on the given snapshot of the platform and precompute every list requests use.
    `progress` is told the name of each step as it begins."""
    config = config or BuildConfig()
    step = progress or (lambda _: None)
    items = _unique_titles(titles)
    index = {str(t.id): n for n, t in enumerate(items)}
    genre_names = tuple(sorted({g for t in items for g in t.genres}))
    genre_of = {g: n for n, g in enumerate(genre_names)}
    item_genres = [tuple(genre_of[g] for g in dict.fromkeys(t.genres)) for t in items]
    t_now = now.timestamp()

    rows = _signal_rows(signals, index, t_now, config)
    user_ids = tuple(dict.fromkeys(r[0] for r in rows))
    user_of = {u: n for n, u in enumerate(user_ids)}
    users = np.array([user_of[r[0]] for r in rows], dtype=np.int64)
    cols = np.array([r[1] for r in rows], dtype=np.int64)
    weights = np.array([r[2] for r in rows], dtype=np.float64)
    stamps = np.array([r[3] for r in rows], dtype=np.float64)
    positive = weights > 0
    data = Interactions(
        user_ids=user_ids,
        item_ids=tuple(index),
        users=users[positive],
        items=cols[positive],
        # Weights become 1-5 "ratings" so the tuned pipeline can weigh by them.
        ratings=1.0 + 4.0 * weights[positive] / max(float(weights.max(initial=1.0)), 1e-9),
        timestamps=stamps[positive],
    )
    catalog = ItemCatalog(
        item_ids=tuple(index),
        titles=tuple(t.name for t in items),
        genres=tuple(tuple(t.genres) for t in items),
        years=tuple(t.release_year for t in items),
    )
    step("candidates")
    algorithm, candidates, ease_weights = _fit(data, catalog, config)

    popularity = _popularity(items, cols[positive], len(items))
    popular = tuple(int(i) for i in np.argsort(-popularity, kind="stable"))
    by_language: dict[str, list[int]] = {}
    by_genre: list[list[int]] = [[] for _ in genre_names]
    for item in popular:
        by_language.setdefault(items[item].original_language, []).append(item)
        for g in item_genres[item]:
            by_genre[g].append(item)

    step("context ranker")
    item_table = _item_table(items, item_genres, len(genre_names))
    table = _signal_table(rows, users, len(user_ids))
    facts = {str(p.id): p for p in profiles}
    user_languages = [facts[u].language if u in facts else None for u in user_ids]
    context, report = (None, {"context_kept": 0.0})
    if config.context_ranker and len(rows):
        context, report = contexttrain.train(
            table, item_table, user_languages, candidates=config.candidates, config=config.ranker
        )
    ranking = _ranking(
        table, item_table, user_languages, candidates, context, tastes_rows=len(rows) > 0
    )

    step("neighbours")
    matrix = data.matrix(weights[positive]) if len(items) else None
    collab = collaborative_weights(matrix, ease_weights) if matrix is not None else np.zeros((0, 0))
    content = content_matrices(item_genres, [tuple(t.cast) for t in items], len(genre_names))
    languages = [t.original_language for t in items]
    tau = config.trend_half_life_days * DAY / math.log(2)
    recent = t_now - stamps <= config.trend_horizon_days * DAY
    trend = np.zeros(len(items))
    np.add.at(trend, cols[recent], np.exp((stamps[recent] - t_now) / tau))

    states = _profile_states(
        rows=rows,
        user_ids=user_ids,
        candidates=candidates,
        item_genres=item_genres,
        n_genres=len(genre_names),
        profiles=profiles,
        index=index,
        genre_of=genre_of,
        ranking=ranking,
    )
    return RecsModel(
        version=version,
        trained_at=now,
        algorithm=algorithm,
        item_ids=tuple(index),
        index=index,
        cards=tuple(_card(t) for t in items),
        maturity=tuple(int(t.maturity_level) for t in items),
        available_from=tuple(_ts(t.available_from, -math.inf) for t in items),
        available_until=tuple(_ts(t.available_until, math.inf) for t in items),
        durations=tuple(float((t.runtime_minutes or 0) * 60) for t in items),
        genre_names=genre_names,
        popular=popular,
        popular_by_language={k: tuple(v) for k, v in by_language.items()},
        by_genre=tuple(tuple(v) for v in by_genre),
        neighbours=neighbour_lists(collab, k=config.neighbours),
        similar=neighbour_lists(collab, k=config.neighbours, content=content, languages=languages),
        trend_t0=t_now,
        trend=tuple(float(x) for x in trend),
        trend_tau=tau,
        item_genres=item_table.genres.astype(np.float32),
        genre_ids=tuple(item_genres),
        context=context,
        profiles=states,
        stats={
            "profiles": float(len(states)),
            "titles": float(len(items)),
            "signals": float(len(rows)),
            **report,
        },
    )


def _unique_titles(titles: Sequence[TitleFacts]) -> list[TitleFacts]:
    seen: dict[str, TitleFacts] = {}
    for title in titles:
        seen.setdefault(str(title.id), title)
    return list(seen.values())


# profile, item, weight, ts, fraction, watched, thumb, device, positive
Row = tuple[str, int, float, float, float, bool, int, str | None, bool]


def _signal_rows(
    signals: Sequence[SignalFacts], index: dict[str, int], t_now: float, config: BuildConfig
) -> list[Row]:
    rows: list[Row] = []
    for s in signals:
        item = index.get(str(s.title_id))
        if item is None:  # a title the catalog no longer has
            continue
        fraction = s.position_s / s.duration_s if s.duration_s > 0 else 0.0
        weight = signal_weight(s, fraction=fraction, now=t_now, abandon_s=config.abandon_days * DAY)
        watched = bool(s.watched or fraction >= WATCHED_FRACTION)
        ts = s.updated_at.timestamp()
        device = s.device
        rows.append(
            (
                str(s.profile_id), item, weight, ts, fraction, watched, int(s.thumb),
                device if isinstance(device, str) else None, is_positive(s, fraction),
            )
        )  # fmt: skip
    return rows


def _signal_table(rows: list[Row], users: IntArray, n_users: int) -> SignalTable:
    moments = [datetime.fromtimestamp(r[3], UTC) for r in rows]
    return SignalTable(
        users=users,
        items=np.array([r[1] for r in rows], dtype=np.int64),
        weights=np.array([r[2] for r in rows], dtype=np.float64),
        stamps=np.array([r[3] for r in rows], dtype=np.float64),
        hours=np.array([hour_bucket(m) for m in moments], dtype=np.int64),
        weeks=np.array([week_part(m) for m in moments], dtype=np.int64),
        devices=np.array([device_class(r[7]) for r in rows], dtype=np.int64),
        positive=np.array([r[8] for r in rows], dtype=bool),
        n_users=n_users,
    )


def _item_table(
    items: Sequence[TitleFacts], item_genres: list[tuple[int, ...]], n_genres: int
) -> ItemTable:
    genres = np.zeros((len(items), n_genres))
    for item, own in enumerate(item_genres):
        if own:
            genres[item, list(own)] = 1.0 / len(own)
    people: dict[str, int] = {}
    pairs = [
        (item, people.setdefault(person, len(people)))
        for item, title in enumerate(items)
        for person in dict.fromkeys(title.cast)
    ]
    cast = sp.csr_matrix(
        (np.ones(len(pairs)), ([p[0] for p in pairs], [p[1] for p in pairs])),
        shape=(len(items), max(len(people), 1)),
    )
    editorial = np.log1p(np.array([max(float(t.popularity), 0.0) for t in items]))
    return ItemTable(
        genres=genres,
        cast=cast,
        years=np.array(
            [np.nan if t.release_year is None else float(t.release_year) for t in items]
        ),
        maturity=np.array([float(t.maturity_level) for t in items]),
        languages=tuple(t.original_language for t in items),
        editorial=editorial / max(float(editorial.max(initial=0.0)), 1e-9),
    )


Ranking = dict[int, tuple[IntArray | None, FloatArray | None, FloatArray | None]]


def _ranking(
    table: SignalTable,
    items: ItemTable,
    languages: list[str | None],
    candidates: dict[int, tuple[int, ...]],
    context: ContextWeights | None,
    *,
    tastes_rows: bool,
) -> Ranking:
    """Per profile row: candidates as an array, their item scores, and the affinity table."""
    if not tastes_rows:
        return {}
    full = contextrank.tastes(table, np.ones(len(table.users), dtype=bool), items)
    down = table.weights <= 0  # only a thumbs down weighs nothing
    disliked: dict[int, set[int]] = {}
    for user, item in zip(table.users[down].tolist(), table.items[down].tolist(), strict=True):
        disliked.setdefault(user, set()).add(item)
    out: Ranking = {}
    for user in range(table.n_users):
        affinity = full.affinity[user].astype(np.float32)
        gone = disliked.get(user, set())
        own = np.array([i for i in candidates.get(user, ()) if i not in gone], dtype=np.int64)
        if context is None or not len(own):
            out[user] = (None, None, affinity)
            continue
        features = contextrank.item_features(full, items, user, own, languages[user])
        out[user] = (own, (features @ context.item).astype(np.float32), affinity)
    return out


def _fit(
    data: Interactions, catalog: ItemCatalog, config: BuildConfig
) -> tuple[str, dict[int, tuple[int, ...]], FloatArray | None]:
    """Candidate lists per user row, and EASE's weights for neighbours."""
    if len(data) == 0 or data.n_items < 2:
        return "popularity", {}, None
    active = np.flatnonzero(np.bincount(data.users, minlength=data.n_users) >= 3)
    users: IntArray = np.arange(data.n_users, dtype=np.int64)
    if len(active) >= config.tune_min_profiles:
        fitted = fit_recommender(data, catalog.features(data.item_ids), FitConfig(seed=config.seed))
        lists = fitted.recommend(users, config.candidates)
        weights = fitted.model.weights if isinstance(fitted.model, EASE) else None
        name = fitted.name
    else:
        model = EASE(l2=config.l2)
        matrix: Csr = data.matrix(data.ratings)
        model.fit(matrix)
        lists = top_k(model.scores(users), matrix, config.candidates)
        weights, name = model.weights, "ease"
    candidates = {u: tuple(int(i) for i in row if i >= 0) for u, row in enumerate(lists)}
    return name, candidates, weights


def _popularity(items: Sequence[TitleFacts], played: IntArray, n: int) -> FloatArray:
    """Catalog popularity and the platform's own plays, each scaled to [0, 1], blended."""
    if n == 0:
        return np.zeros(0)
    editorial = np.log1p(np.array([max(float(t.popularity), 0.0) for t in items]))
    plays = np.log1p(np.bincount(played, minlength=n).astype(np.float64))
    score: FloatArray = editorial / max(float(editorial.max()), 1e-9) + plays / max(
        float(plays.max()), 1e-9
    )
    return score


def _profile_states(
    *,
    rows: list[Row],
    user_ids: tuple[str, ...],
    candidates: dict[int, tuple[int, ...]],
    item_genres: list[tuple[int, ...]],
    n_genres: int,
    profiles: Sequence[ProfileFacts],
    index: dict[str, int],
    genre_of: dict[str, int],
    ranking: Ranking,
) -> dict[str, ProfileState]:
    by_profile: dict[str, list[Row]] = {}
    for row in rows:
        by_profile.setdefault(row[0], []).append(row)
    facts = {str(p.id): p for p in profiles}
    row_of = {u: n for n, u in enumerate(user_ids)}
    genre_keys = genre_lookup(genre_of)
    states: dict[str, ProfileState] = {}
    for profile in dict.fromkeys([*user_ids, *facts]):
        own = sorted(by_profile.get(profile, []), key=lambda r: -r[3])
        fact = facts.get(profile)
        affinity = np.zeros(n_genres)
        for _, item, weight, *_ in own:
            for g in item_genres[item]:
                affinity[g] += weight / len(item_genres[item])
        if fact is not None:  # onboarding picks count like one watched title each
            for g in picked_genres(fact.picked_genres, genre_keys):
                affinity[g] += 1.0
        order = [int(g) for g in np.argsort(-affinity, kind="stable") if affinity[g] > 0]
        total = float(affinity.sum()) or 1.0
        disliked = frozenset(r[1] for r in own if r[6] < 0)
        at = row_of.get(profile, -1)
        ranked, base, table = ranking.get(at, (None, None, None))
        states[profile] = ProfileState(
            candidates=tuple(i for i in candidates.get(at, ()) if i not in disliked),
            progress=tuple(ProgressMark(r[1], r[4], r[5], r[3]) for r in own),
            disliked=disliked,
            genre_order=tuple(order),
            genre_share=tuple(float(affinity[g]) / total for g in order),
            language=fact.language if fact is not None else None,
            picked_titles=tuple(
                index[str(t)] for t in (fact.picked_titles if fact else ()) if str(t) in index
            ),
            liked=tuple(r[1] for r in own if r[6] > 0),
            ranking=ranked,
            base=base,
            affinity=table,
        )
    return states


def genre_slug(name: str) -> str:
    """The catalog's key for a genre name (its `slugify`), which onboarding picks use. Recs
    imports no other service, so the rule is repeated here; a test keeps the two in step."""
    slug = re.sub(r"[\W_]+", "-", name.casefold()).strip("-")
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    if not slug:
        return f"g-{digest}"
    if len(slug) > 60:
        return f"{slug[:49]}-{digest}"
    return slug


def genre_lookup(genre_of: dict[str, int]) -> dict[str, int]:
    """Genre index by display name and by catalog slug."""
    return {**{genre_slug(name): g for name, g in genre_of.items()}, **genre_of}


def picked_genres(picks: Sequence[str], lookup: dict[str, int]) -> tuple[int, ...]:
    """The genres onboarding picks name (slugs or names), once each, in pick order."""
    return tuple(dict.fromkeys(lookup[p] for p in picks if p in lookup))


def _card(title: TitleFacts) -> Card:
    return Card(
        id=str(title.id),
        name=title.name,
        kind=title.kind,
        year=title.release_year,
        maturity_level=int(title.maturity_level),
        language=title.original_language,
        genres=tuple(title.genres),
    )


def _ts(moment: datetime | None, default: float) -> float:
    return default if moment is None else moment.timestamp()
