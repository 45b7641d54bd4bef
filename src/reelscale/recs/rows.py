"""The home page of a profile, and More Like This, from a `RecsModel` and the live overlay.

Which rows a profile gets, and their order, are personal: every candidate row gets a
priority from the profile's own signals (how recent the title behind a Because You Watched
row is, how strong a genre is in its history, whether it has any history at all), rows are
filled in priority order, and a title used by a higher row is not repeated below it. Every
title shown is within the profile's maturity ceiling and its availability window at `now`.

The request's context (hour and week part of `now`, the viewer's device) re-orders the
profile's candidates through the model's context ranker, and weighs its genre rows by what
it watches in that context. A thumbs down (built or live) removes the title from every row
and moves its closest neighbours to the end of the personal rows; a thumbs up seeds a
Because You Liked row at once.

Nothing here touches a database: it walks the model's precomputed lists, plus one small
matrix product over the profile's candidates for the context.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import numpy as np

from reelscale.core.errors import NotFound
from reelscale.core.maturity import ADULT_LEVEL
from reelscale.recs import contextrank
from reelscale.recs.context import Context, context_of
from reelscale.recs.contextrank import NEAR_DISLIKED
from reelscale.recs.live import LiveSignals
from reelscale.recs.snapshot import (
    RESUME_MIN_FRACTION,
    WATCHED_FRACTION,
    Card,
    ProfileState,
    RecsModel,
)

DAY = 86_400.0
# Row titles name a profile's language in words; ISO 639-1 codes outside this list are
# shown as they are.
LANGUAGE_NAMES = {
    "ar": "Arabic", "da": "Danish", "de": "German", "en": "English", "es": "Spanish",
    "fi": "Finnish", "fr": "French", "hi": "Hindi", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "no": "Norwegian", "pl": "Polish",
    "pt": "Portuguese", "ru": "Russian", "sv": "Swedish", "th": "Thai", "tr": "Turkish",
    "zh": "Chinese",
}  # fmt: skip


@dataclass(frozen=True)
class Viewer:
    """Who the page is for: the profile, its maturity ceiling, and (if known) its language
    and the device it is on."""

    profile_id: str
    max_maturity: int | None = None  # None: no ceiling
    language: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    reason: str
    items: tuple[Card, ...]
    progress: tuple[float, ...] = ()  # Continue Watching only: fraction watched per item


@dataclass(frozen=True)
class _Plan:
    priority: float
    id: str
    title: str
    reason: str
    source: Callable[[], Iterable[int]]
    minimum: int


class RowBuilder:
    def __init__(
        self, *, row_size: int = 20, max_rows: int = 20, genre_rows: int = 8, min_items: int = 4
    ) -> None:
        self.row_size = row_size
        self.max_rows = max_rows
        self.genre_rows = genre_rows
        self.min_items = min_items

    def home(
        self, *, model: RecsModel, live: LiveSignals, viewer: Viewer, now: datetime
    ) -> list[Row]:
        """The rows of `viewer`'s home page at `now`, in display order."""
        ts = now.timestamp()
        ceiling = ADULT_LEVEL if viewer.max_maturity is None else viewer.max_maturity
        state = model.profiles.get(viewer.profile_id) or ProfileState()
        language = viewer.language or state.language
        marks = _marks(model, live, viewer.profile_id, state)
        disliked, liked = _thumbs(model, live, viewer.profile_id, state)
        seen = set(marks) | disliked
        maturity, start, end = model.maturity, model.available_from, model.available_until
        context = context_of(now, viewer.device)
        ranked = ranked_candidates(model, state, context, disliked)

        def allowed(item: int) -> bool:
            return maturity[item] <= ceiling and start[item] <= ts < end[item]

        rows: list[Row] = []
        used: set[int] = set()
        watching = sorted(
            (
                m
                for m in marks.items()
                if not m[1][1] and RESUME_MIN_FRACTION <= m[1][0] < WATCHED_FRACTION
            ),
            key=lambda m: -m[1][2],
        )
        resume = [
            (item, fraction)
            for item, (fraction, _, _) in watching
            if allowed(item) and item not in disliked
        ]
        if resume:
            resume = resume[: self.row_size]
            used.update(item for item, _ in resume)
            rows.append(
                Row(
                    id="continue-watching",
                    title="Continue Watching",
                    reason="titles you started",
                    items=tuple(model.cards[i] for i, _ in resume),
                    progress=tuple(round(f, 4) for _, f in resume),
                )
            )
        plans = self._plans(model, live, state, marks, language, ts, ranked, (disliked, liked))
        plans.extend(self._genre_plans(model, state, ranked, _genre_shares(model, state, context)))
        for plan in sorted(plans, key=_order):
            picked: dict[int, None] = {}  # ordered, and sources may repeat an item
            for item in plan.source():
                if item in used or item in seen or item in picked or not allowed(item):
                    continue
                picked[item] = None
                if len(picked) >= self.row_size:
                    break
            if len(picked) < min(plan.minimum, self.row_size):
                continue
            used.update(picked)
            rows.append(
                Row(plan.id, plan.title, plan.reason, tuple(model.cards[i] for i in picked))
            )
            if len(rows) >= self.max_rows:
                break
        return rows

    def more_like_this(
        self, *, model: RecsModel, live: LiveSignals, title_id: str, viewer: Viewer, now: datetime
    ) -> Row:
        """Titles like `title_id` that `viewer` may watch at `now`: watched together, then
        sharing genres, cast and language. NotFound for a title the model does not know."""
        item = model.index.get(title_id)
        if item is None:
            raise NotFound("no such title")
        ts = now.timestamp()
        ceiling = ADULT_LEVEL if viewer.max_maturity is None else viewer.max_maturity
        state = model.profiles.get(viewer.profile_id) or ProfileState()
        disliked, _ = _thumbs(model, live, viewer.profile_id, state)
        genres = [model.genre_names.index(g) for g in model.cards[item].genres]
        fallback = (i for g in genres for i in model.by_genre[g])
        picked: list[int] = []
        for other in _chain(model.similar[item], fallback):
            if other == item or other in picked or other in disliked:
                continue
            if model.maturity[other] > ceiling:
                continue
            if not model.available_from[other] <= ts < model.available_until[other]:
                continue
            picked.append(other)
            if len(picked) >= self.row_size:
                break
        name = model.cards[item].name
        return Row(
            id=f"more-like-this:{title_id}",
            title=f"More Like {name}",
            reason=f"watched by people who watched {name}, or sharing its genres and cast",
            items=tuple(model.cards[i] for i in picked),
        )

    def _plans(
        self,
        model: RecsModel,
        live: LiveSignals,
        state: ProfileState,
        marks: dict[int, tuple[float, bool, float]],
        language: str | None,
        ts: float,
        ranked: tuple[int, ...],
        thumbs: tuple[frozenset[int], tuple[int, ...]],
    ) -> list[_Plan]:
        disliked, liked = thumbs
        local = model.popular_by_language.get(language or "", ())

        def popular() -> Iterable[int]:
            return _chain(local, model.popular)

        plans: list[_Plan] = []
        warm = bool(state.candidates)
        if warm:
            plans.append(
                _Plan(
                    90,
                    "top-picks",
                    "Top Picks for You",
                    "based on what you watch",
                    lambda: _chain(ranked, local),
                    self.min_items,
                )
            )
        else:
            if state.picked_titles or state.genre_order:
                picks = state.picked_titles
                genres = [model.by_genre[g] for g in state.genre_order]
                plans.append(
                    _Plan(
                        92,
                        "top-picks",
                        "Picked for You",
                        "from what you told us you like",
                        lambda: _chain(picks, *_interleave(genres)),
                        1,
                    )
                )
            # A picked title says more than its genre: what members who watched it went on
            # to watch (its neighbours) is the first collaborative signal a new profile has.
            for n, item in enumerate(state.picked_titles[:2]):
                name = model.cards[item].name
                plans.append(
                    _Plan(
                        86 - n,
                        f"because-you-picked:{model.item_ids[item]}",
                        f"Because You Picked {name}",
                        f"members who watched {name} also watched",
                        partial(_chain, model.neighbours[item], model.similar[item]),
                        self.min_items,
                    )
                )
            label = (
                f"Popular in {LANGUAGE_NAMES.get(language, language)}"
                if language and local
                else "Popular on reelscale"
            )
            plans.append(
                _Plan(88, "popular", label, "what members like you watch", popular, self.min_items)
            )
        completed = sorted(
            ((u, i) for i, (f, w, u) in marks.items() if w and i not in disliked), reverse=True
        )
        seeds = {item for _, item in completed[:3]}
        for n, item in enumerate([i for i in liked if i not in seeds][:2]):
            name = model.cards[item].name
            plans.append(
                _Plan(
                    84 - n,
                    f"because-you-liked:{model.item_ids[item]}",
                    f"Because You Liked {name}",
                    f"members who liked {name} also watched",
                    partial(_chain, model.neighbours[item], model.similar[item]),
                    self.min_items,
                )
            )
        for updated, item in completed[:3]:
            age_days = max(ts - updated, 0.0) / DAY
            name = model.cards[item].name
            plans.append(
                _Plan(
                    65 + 20 * math.pow(0.5, age_days / 14),
                    f"because-you-watched:{model.item_ids[item]}",
                    f"Because You Watched {name}",
                    f"members who watched {name} also watched",
                    partial(_chain, model.neighbours[item], model.similar[item]),
                    self.min_items,
                )
            )
        plans.append(
            _Plan(
                60 if warm else 80,
                "trending",
                "Trending Now",
                "played most in recent days",
                lambda: live.trending(model),
                self.min_items,
            )
        )
        return plans

    def _genre_plans(
        self,
        model: RecsModel,
        state: ProfileState,
        candidates: tuple[int, ...],
        shares: list[tuple[int, float]],
    ) -> list[_Plan]:
        ranked: list[tuple[int, float]] = []
        if shares:
            strongest = shares[0][1]
            ranked = [(g, 30 + 50 * s / strongest) for g, s in shares]
        # Then the catalog's biggest genres, below every genre the profile has shown a taste
        # for: a new profile still gets a browsable page.
        known = {g for g, _ in ranked}
        sizes = sorted(range(len(model.genre_names)), key=lambda g: -len(model.by_genre[g]))
        ranked += [(g, 30.0 - n * 0.1) for n, g in enumerate(x for x in sizes if x not in known)]
        ranked = ranked[: self.genre_rows]
        own: dict[int, list[int]] = {genre: [] for genre, _ in ranked}
        for item in candidates:  # one pass, not one per row
            for genre in model.genre_ids[item]:
                if genre in own:
                    own[genre].append(item)
        plans = []
        for genre, priority in ranked:
            name = model.genre_names[genre]
            mine = own[genre]
            plans.append(
                _Plan(
                    priority,
                    f"genre:{name}",
                    name,
                    f"{name} picked for you" if mine else f"popular {name}",
                    partial(_chain, mine, model.by_genre[genre]),
                    self.min_items,
                )
            )
        return plans


def _order(plan: _Plan) -> tuple[float, str]:
    return (-plan.priority, plan.id)


def ranked_candidates(
    model: RecsModel, state: ProfileState, context: Context, disliked: frozenset[int]
) -> tuple[int, ...]:
    """The profile's candidates for this context, best first; the closest neighbours of a
    disliked title last (a dislike of one film is not a dislike of its whole genre)."""
    if (
        model.context is not None
        and state.ranking is not None
        and state.base is not None
        and state.affinity is not None
        and len(state.ranking)
    ):
        order = contextrank.rank(
            state.ranking, state.base, model.item_genres, state.affinity, model.context, context
        )
        candidates: tuple[int, ...] = tuple(order.tolist())
    else:
        candidates = state.candidates
    near = {n for d in disliked for n in model.similar[d][:NEAR_DISLIKED]} - disliked
    if not near:
        return candidates
    return tuple([i for i in candidates if i not in near] + [i for i in candidates if i in near])


def _genre_shares(
    model: RecsModel, state: ProfileState, context: Context
) -> list[tuple[int, float]]:
    """(genre, share) strongest first. Without a context ranker: the profile's overall taste
    (onboarding picks included). With one: mostly what the profile watches in this context,
    each part of the context weighed as much as the ranker learnt it matters."""
    if not state.genre_order:
        return []
    shares = dict(zip(state.genre_order, state.genre_share, strict=True))
    if model.context is not None and state.affinity is not None:
        learnt = np.maximum(model.context.slot_weights, 0.0) + 1e-3
        hour, week, device = context.slots
        if device is None:
            learnt[3], device = 0.0, 0  # an unknown device has no say
        here = learnt @ state.affinity[[0, hour, week, device]] / learnt.sum()
        shares = {g: 0.2 * s + 0.8 * float(here[g]) for g, s in shares.items()}
    return sorted(shares.items(), key=lambda gs: (-gs[1], gs[0]))


def _thumbs(
    model: RecsModel, live: LiveSignals, profile: str, state: ProfileState
) -> tuple[frozenset[int], tuple[int, ...]]:
    """(disliked, liked most recent first): the build's thumbs, overridden by live ones."""
    fresh = live.thumbs.get(profile)
    if not fresh:
        return state.disliked, state.liked
    given = {model.index[t]: m for t, m in fresh.items() if t in model.index}
    disliked = {i for i in state.disliked if i not in given}
    disliked |= {i for i, m in given.items() if m.thumb < 0}
    newest = sorted((i for i, m in given.items() if m.thumb > 0), key=lambda i: -given[i].updated)
    liked = newest + [i for i in state.liked if i not in given]
    return frozenset(disliked), tuple(liked)


def _marks(
    model: RecsModel, live: LiveSignals, profile: str, state: ProfileState
) -> dict[int, tuple[float, bool, float]]:
    """item -> (fraction, watched, updated): the build's marks, overridden by newer live ones."""
    marks = {m.item: (m.fraction, m.watched, m.updated) for m in state.progress}
    for title, mark in live.progress.get(profile, {}).items():
        item = model.index.get(title)
        if item is not None:
            marks[item] = (mark.fraction, mark.watched, mark.updated)
    return marks


def _chain(*parts: Iterable[int]) -> Iterable[int]:
    for part in parts:
        yield from part


def _interleave(lists: list[tuple[int, ...]]) -> list[list[int]]:
    """One list taking each list's next item in turn, so several liked genres all show."""
    out: list[int] = []
    for depth in range(max((len(x) for x in lists), default=0)):
        out.extend(x[depth] for x in lists if depth < len(x))
    return [out]
