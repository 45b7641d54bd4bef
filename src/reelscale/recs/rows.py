"""The home page of a profile, and More Like This, from a `RecsModel` and the live overlay.

Which rows a profile gets, and their order, are personal: every candidate row gets a
priority from the profile's own signals (how recent the title behind a Because You Watched
row is, how strong a genre is in its history, whether it has any history at all), rows are
filled in priority order, and a title used by a higher row is not repeated below it. Every
title shown is within the profile's maturity ceiling and its availability window at `now`.

Nothing here touches a database or a matrix: it walks the model's precomputed lists.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from reelscale.core.errors import NotFound
from reelscale.core.maturity import ADULT_LEVEL
from reelscale.recs.live import LiveSignals
from reelscale.recs.snapshot import (
    RESUME_MIN_FRACTION,
    WATCHED_FRACTION,
    Card,
    ProfileState,
    RecsModel,
)

DAY = 86_400.0


@dataclass(frozen=True)
class Viewer:
    """Who the page is for: the profile, its maturity ceiling and (if known) its language."""

    profile_id: str
    max_maturity: int | None = None  # None: no ceiling
    language: str | None = None


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
        seen = set(marks) | state.disliked
        maturity, start, end = model.maturity, model.available_from, model.available_until

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
            if allowed(item) and item not in state.disliked
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
        for plan in sorted(self._plans(model, live, state, marks, language, ts), key=_order):
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
        genres = [model.genre_names.index(g) for g in model.cards[item].genres]
        fallback = (i for g in genres for i in model.by_genre[g])
        picked: list[int] = []
        for other in _chain(model.similar[item], fallback):
            if other == item or other in picked or other in state.disliked:
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
    ) -> list[_Plan]:
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
                    lambda: _chain(state.candidates, local),
                    self.min_items,
                )
            )
        else:
            if state.picked_titles or state.genre_order:
                picks = state.picked_titles
                liked = [model.by_genre[g] for g in state.genre_order]
                plans.append(
                    _Plan(
                        92,
                        "top-picks",
                        "Picked for You",
                        "from what you told us you like",
                        lambda: _chain(picks, *_interleave(liked)),
                        1,
                    )
                )
            label = f"Popular in {language}" if language and local else "Popular on reelscale"
            plans.append(
                _Plan(88, "popular", label, "what members like you watch", popular, self.min_items)
            )
        completed = sorted(((u, i) for i, (f, w, u) in marks.items() if w), reverse=True)
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
        plans.extend(self._genre_plans(model, state))
        return plans

    def _genre_plans(self, model: RecsModel, state: ProfileState) -> list[_Plan]:
        ranked: list[tuple[int, float]] = []
        if state.genre_order:
            strongest = state.genre_share[0]
            ranked = [
                (g, 30 + 50 * s / strongest)
                for g, s in zip(state.genre_order, state.genre_share, strict=True)
            ]
        # Then the catalog's biggest genres, below every genre the profile has shown a taste
        # for: a new profile still gets a browsable page.
        known = {g for g, _ in ranked}
        sizes = sorted(range(len(model.genre_names)), key=lambda g: -len(model.by_genre[g]))
        ranked += [(g, 30.0 - n * 0.1) for n, g in enumerate(x for x in sizes if x not in known)]
        plans = []
        for genre, priority in ranked[: self.genre_rows]:
            name = model.genre_names[genre]
            mine = [i for i in state.candidates if name in model.cards[i].genres]
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
