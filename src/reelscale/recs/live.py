"""Playback events since the last build, applied the moment they arrive.

A member who stops a film expects it in Continue Watching on the next page load, not after
the nightly retrain. So `playback.*` events update this overlay at once: resume marks per
profile, thumbs per profile, and play counts for Trending. A build reads the same facts from
the database, so when a new model is swapped in, everything it already covers is dropped
here (`rebase`). Delivery is at least once and not always in order: an event older than the
mark it would replace is ignored.

Onboarding picks (`profile.picks_updated`) are kept here too, per profile, until a build
that read them from accounts is swapped in: a cold profile's page is led by its picks on its
next request, not at the next build (see `with_picks` and `RecsService.on_event`).

Everything is mutated on the event loop; readers on other threads only ever see a whole
dict entry or a whole cached tuple replaced, never a half-written one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

import numpy as np

from reelscale.recs.snapshot import (
    RESUME_MIN_FRACTION,
    WATCHED_FRACTION,
    ProfileState,
    RecsModel,
    picked_genres,
)

MAX_PLAYS = 200_000  # recent plays kept for Trending between builds
MAX_PICKS = 50  # per list; accounts allows far fewer, this only bounds a malformed event


@dataclass(frozen=True)
class LiveThumb:
    thumb: int  # -1, 0 (taken back) or +1
    updated: float  # Unix seconds


@dataclass(frozen=True)
class LiveMark:
    fraction: float
    watched: bool
    updated: float  # Unix seconds
    duration_s: float


@dataclass(frozen=True)
class LivePicks:
    """A profile's onboarding picks as the latest `profile.picks_updated` gave them."""

    genres: tuple[str, ...]  # catalog slugs, most liked first
    titles: tuple[str, ...]  # title ids
    language: str | None
    updated: float  # Unix seconds


_Mark = TypeVar("_Mark", LiveMark, LiveThumb)


class LiveSignals:
    def __init__(self) -> None:
        self.progress: dict[str, dict[str, LiveMark]] = {}
        self.thumbs: dict[str, dict[str, LiveThumb]] = {}
        self.picks: dict[str, LivePicks] = {}
        self._plays: deque[tuple[float, str]] = deque(maxlen=MAX_PLAYS)
        self._extra: dict[str, float] = {}
        self._revision = 0
        self._trending: tuple[tuple[int, int], tuple[int, ...]] = ((-1, -1), ())

    def rebase(self, model: RecsModel) -> None:
        """Forget what `model` was built from; rescale Trending to its reference time."""
        cutoff = model.trained_at.timestamp()
        _drop_older(self.progress, cutoff)
        _drop_older(self.thumbs, cutoff)
        self.picks = {p: picks for p, picks in self.picks.items() if picks.updated > cutoff}
        while self._plays and self._plays[0][0] <= cutoff:
            self._plays.popleft()
        extra: dict[str, float] = {}
        for at, title in self._plays:
            extra[title] = extra.get(title, 0.0) + _decayed(at, model)
        self._extra = extra
        self._revision += 1

    def apply(
        self, *, type: str, title_id: str, data: dict[str, Any], at: datetime, model: RecsModel
    ) -> None:
        """Fold one `playback.*` event in (unknown types and malformed data are ignored)."""
        profile = data.get("profile_id")
        if not isinstance(profile, str) or not profile or not title_id:
            return
        ts = at.timestamp()
        if type == "playback.thumb":
            self._thumb(profile, title_id, data.get("thumb"), ts)
            return
        if type == "playback.started":
            self._plays.append((ts, title_id))
            self._extra[title_id] = self._extra.get(title_id, 0.0) + _decayed(ts, model)
            self._revision += 1
            return
        if type not in ("playback.heartbeat", "playback.stopped"):
            return
        position = data.get("position_s")
        if not isinstance(position, int | float) or not math.isfinite(position) or position < 0:
            return
        marks = self.progress.setdefault(profile, {})
        previous = marks.get(title_id)
        if previous is not None and ts < previous.updated:
            return  # a late duplicate or an out-of-order beat: the newer mark stands
        duration = _duration(data, title_id, previous, model)
        if duration <= 0:
            return
        fraction = min(float(position) / duration, 1.0)
        # The playback service's rule: a watched title stays watched through a rewatch's
        # opening minutes, and past 5% it is simply in progress again.
        was_watched = (
            previous.watched if previous is not None else _built_watched(profile, title_id, model)
        )
        watched = fraction >= WATCHED_FRACTION or (was_watched and fraction < RESUME_MIN_FRACTION)
        marks[title_id] = LiveMark(fraction, watched, ts, duration)

    def set_picks(self, *, data: dict[str, Any], at: datetime) -> tuple[str, LivePicks] | None:
        """Keep one `profile.picks_updated`; returns (profile, picks), or None for a
        malformed event or one older than the picks already kept."""
        profile, genres, titles = data.get("profile_id"), data.get("genres"), data.get("titles")
        if not isinstance(profile, str) or not profile:
            return None
        if not isinstance(genres, list) or not isinstance(titles, list):
            return None
        language = data.get("language")
        ts = at.timestamp()
        previous = self.picks.get(profile)
        if previous is not None and ts < previous.updated:
            return None  # redelivered out of order: the newer picks stand
        picks = LivePicks(
            genres=tuple(g for g in genres if isinstance(g, str))[:MAX_PICKS],
            titles=tuple(t for t in titles if isinstance(t, str))[:MAX_PICKS],
            language=language if isinstance(language, str) and language else None,
            updated=ts,
        )
        self.picks[profile] = picks
        return profile, picks

    def _thumb(self, profile: str, title_id: str, thumb: object, ts: float) -> None:
        if isinstance(thumb, bool) or thumb not in (-1, 0, 1):
            return
        marks = self.thumbs.setdefault(profile, {})
        previous = marks.get(title_id)
        if previous is None or ts >= previous.updated:
            marks[title_id] = LiveThumb(int(thumb), ts)

    def trending(self, model: RecsModel) -> tuple[int, ...]:
        """Item indices by decayed recent plays (the build's plus the live ones), best first."""
        key = (model.version, self._revision)
        cached_key, order = self._trending
        if cached_key == key:
            return order
        scores = np.array(model.trend, dtype=np.float64)
        for title, extra in self._extra.items():
            item = model.index.get(title)
            if item is not None:
                scores[item] += extra
        ranked = np.argsort(-scores, kind="stable")
        order = tuple(int(i) for i in ranked if scores[i] > 0)
        self._trending = (key, order)
        return order


def with_picks(
    model: RecsModel, state: ProfileState | None, picks: LivePicks, genres: dict[str, int]
) -> ProfileState:
    """`state` as a build reading `picks` would have made it; `genres` is
    `snapshot.genre_lookup` of the model's genres.

    For a profile with no history the build's state comes from its picks and language
    alone, so this is exact: picked genres each weigh the same and a build orders equal
    weights by genre index. A profile with history keeps its learnt genre order until the
    next build: how much a pick weighs against it needs the signal weights, which only a
    build reads (and such a profile's page comes from its history, not its picks)."""
    state = state or ProfileState()
    titles = tuple(model.index[t] for t in picks.titles if t in model.index)
    language = picks.language or state.language
    if state.progress:
        return replace(state, picked_titles=titles, language=language)
    order = tuple(sorted(picked_genres(picks.genres, genres)))
    return replace(
        state,
        genre_order=order,
        genre_share=tuple(1.0 / len(order) for _ in order),
        picked_titles=titles,
        language=language,
    )


def _drop_older(table: dict[str, dict[str, _Mark]], cutoff: float) -> None:
    for profile, marks in list(table.items()):
        kept = {t: m for t, m in marks.items() if m.updated > cutoff}
        if kept:
            table[profile] = kept
        else:
            del table[profile]


def _decayed(ts: float, model: RecsModel) -> float:
    # All counts share the model's reference time, so their order never needs re-decaying.
    return math.exp(min((ts - model.trend_t0) / model.trend_tau, 600.0))


def _duration(
    data: dict[str, Any], title: str, previous: LiveMark | None, model: RecsModel
) -> float:
    given = data.get("duration_s")
    if isinstance(given, int | float) and math.isfinite(given) and given > 0:
        return float(given)
    if previous is not None:
        return previous.duration_s
    item = model.index.get(title)
    return model.durations[item] if item is not None else 0.0


def _built_watched(profile: str, title: str, model: RecsModel) -> bool:
    state = model.profiles.get(profile)
    item = model.index.get(title)
    if state is None or item is None:
        return False
    return any(m.item == item and m.watched for m in state.progress)
