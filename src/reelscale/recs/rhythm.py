"""Synthetic platform data with a planted daily rhythm, for the context ranker's tests.

Profiles fall into taste groups; each group watches one genre in the evening (19:00-22:59
UTC, on a TV) and another in the morning (06:00-08:59 UTC, on a phone). For every group
there is one with the two genres swapped, so the platform as a whole watches every genre at
every hour alike: only each profile's own rhythm tells what it wants now. Who watches
together is the same morning and evening, so a collaborative model alone cannot tell the
hours apart either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from reelscale.recs.sources import ProfileRecord, SignalRecord, StaticSources, TitleRecord

GROUPS = (
    ("Action", "Documentary"),
    ("Documentary", "Action"),
    ("Comedy", "Horror"),
    ("Horror", "Comedy"),
)  # (evening genre, morning genre)
EVENING_HOURS = (19, 20, 21, 22)
MORNING_HOURS = (6, 7, 8)


@dataclass(frozen=True)
class RhythmConfig:
    profiles: int = 240
    titles_per_genre: int = 40
    plays_per_profile: int = 30
    days: int = 90
    seed: int = 5


def group_of(profile_id: str) -> tuple[str, str]:
    """(evening genre, morning genre) of a profile made by `rhythm_sources`."""
    return GROUPS[int(profile_id.rsplit("-", 1)[1]) % len(GROUPS)]


def rhythm_sources(config: RhythmConfig | None = None, *, now: datetime) -> StaticSources:
    config = config or RhythmConfig()
    rng = np.random.default_rng(config.seed)
    genres = sorted({g for pair in GROUPS for g in pair})
    titles: list[TitleRecord] = []
    by_genre: dict[str, list[int]] = {g: [] for g in genres}
    for genre in genres:
        for n in range(config.titles_per_genre):
            by_genre[genre].append(len(titles))
            titles.append(
                TitleRecord(
                    id=f"{genre.lower()}-{n}",
                    name=f"{genre} {n}",
                    genres=(genre,),
                    cast=tuple(f"{genre} actor {int(k)}" for k in rng.integers(0, 12, 2)),
                    release_year=int(rng.integers(1990, 2026)),
                    maturity_level=13,
                    popularity=float(rng.lognormal(2.0, 1.0)),
                    runtime_minutes=100,
                )
            )
    appeal = np.array([t.popularity for t in titles])
    signals: list[SignalRecord] = []
    profiles: list[ProfileRecord] = []
    start = now - timedelta(days=config.days)
    for p in range(config.profiles):
        profile = f"profile-{p}"
        profiles.append(ProfileRecord(id=profile, language="en"))
        evening, morning = GROUPS[p % len(GROUPS)]
        days = np.sort(rng.choice(config.days, config.plays_per_profile, replace=False))
        watched: set[int] = set()
        for day in days:
            at_night = rng.random() < 0.5
            genre, hours, device = (
                (evening, EVENING_HOURS, "tv") if at_night else (morning, MORNING_HOURS, "ios")
            )
            pool = [i for i in by_genre[genre] if i not in watched]
            weights = appeal[pool] / appeal[pool].sum()
            item = int(rng.choice(pool, p=weights))
            watched.add(item)
            moment = start + timedelta(
                days=int(day), hours=int(rng.choice(hours)), minutes=int(rng.integers(60))
            )
            fraction = 1.0 if rng.random() < 0.85 else float(rng.uniform(0.3, 0.7))
            duration = 6000.0
            signals.append(
                SignalRecord(
                    profile_id=profile,
                    title_id=titles[item].id,
                    position_s=fraction * duration,
                    duration_s=duration,
                    updated_at=moment,
                    watched=fraction >= 0.9,
                    device=device,
                )
            )
    return StaticSources(titles=titles, signals=signals, profiles=profiles)


def at_hour(day: datetime, hour: int) -> datetime:
    """`day` at `hour`:30 UTC."""
    return datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC)
