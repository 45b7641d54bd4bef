"""Interaction data with planted structure, shaped like MovieLens-100k.

MovieLens may not ship with the project, so tests and benchmarks use this instead. What is
planted, and so what a model can find:

- taste: items sit around `clusters` latent centres; each user mixes one to three centres,
  and chooses items by affinity (a softmax with temperature `taste`);
- genres follow the centres (each centre prefers a few genres), so genres carry signal;
- popularity: a log-normal item appeal, shared by all users;
- time: every user is active over a short window (most in a single day, some over weeks)
  inside seven months; items released during those months cannot be chosen before their
  release and enjoy a launch buzz that fades over weeks;
- ratings 1-5 rise with affinity and appeal.

Default shape: 943 users, 1682 items, about 100,000 interactions, at least 20 per user,
like MovieLens-100k. The same seed always gives the same data.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reelscale.recs.data import Interactions, ItemCatalog
from reelscale.recs.types import FloatArray, IntArray

GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
DAY = 86_400.0
START = 874_724_710.0  # 1997-09-20, when MovieLens-100k begins


@dataclass(frozen=True)
class SyntheticConfig:
    users: int = 943
    items: int = 1682
    interactions: int = 100_000
    min_per_user: int = 20
    clusters: int = 14
    dims: int = 24
    taste: float = 1.4
    appeal_spread: float = 1.6
    buzz: float = 1.2
    days: float = 212.0
    seed: int = 42


@dataclass(frozen=True)
class SyntheticData:
    interactions: Interactions
    catalog: ItemCatalog


def generate(config: SyntheticConfig | None = None) -> SyntheticData:
    """Draw a data set from `config` (the defaults give the MovieLens-100k shape)."""
    config = config or SyntheticConfig()
    rng = np.random.default_rng(config.seed)
    centres = rng.normal(0.0, 1.0, (config.clusters, config.dims))
    genre_taste = rng.dirichlet(np.full(len(GENRES), 0.25), config.clusters)
    cluster_of = rng.choice(
        config.clusters, config.items, p=rng.dirichlet(np.ones(config.clusters) * 3)
    )
    item_vectors = centres[cluster_of] + rng.normal(0.0, 0.7, (config.items, config.dims))
    years, release = _years_and_releases(rng, config)
    appeal = rng.normal(0.0, config.appeal_spread, config.items) + 0.4 * (years >= 1995)

    mixes = rng.dirichlet(np.full(config.clusters, 0.15), config.users)
    user_vectors = mixes @ centres + rng.normal(0.0, 0.5, (config.users, config.dims))
    affinity = user_vectors @ item_vectors.T / np.sqrt(config.dims)
    affinity = (affinity - affinity.mean()) / affinity.std()

    begins = START + rng.uniform(0.0, config.days, config.users) * DAY
    single_day = rng.random(config.users) < 0.7
    spans = np.where(single_day, 0.3, rng.exponential(30.0, config.users)) * DAY
    ends = np.minimum(begins + spans, START + config.days * DAY)
    counts = _activity(rng, config)

    users: list[IntArray] = []
    items: list[IntArray] = []
    stamps: list[FloatArray] = []
    ratings: list[FloatArray] = []
    for user in range(config.users):
        age_days = np.maximum(ends[user] - release, 0.0) / DAY
        utility = config.taste * affinity[user] + appeal
        utility += config.buzz * np.exp(-age_days / 30.0) * (release > START - 60 * DAY)
        utility[release > ends[user]] = -np.inf
        gumbel = rng.gumbel(size=config.items)
        chosen = np.argsort(-(utility + gumbel))[: counts[user]]
        chosen = chosen[np.isfinite(utility[chosen])]
        earliest = np.maximum(begins[user], release[chosen])
        when = earliest + rng.random(len(chosen)) * (ends[user] - earliest)
        noise = rng.normal(0.0, 0.8, len(chosen))
        stars = 3.5 + 0.9 * affinity[user, chosen] + 0.3 * appeal[chosen] + noise
        users.append(np.full(len(chosen), user, dtype=np.int64))
        items.append(chosen.astype(np.int64))
        stamps.append(np.floor(when))
        ratings.append(np.clip(np.rint(stars), 1, 5))

    interactions = Interactions(
        user_ids=tuple(str(u + 1) for u in range(config.users)),
        item_ids=tuple(str(i + 1) for i in range(config.items)),
        users=np.concatenate(users),
        items=np.concatenate(items),
        ratings=np.concatenate(ratings),
        timestamps=np.concatenate(stamps),
    )
    catalog = ItemCatalog(
        item_ids=interactions.item_ids,
        titles=tuple(f"Title {i + 1} ({years[i]})" for i in range(config.items)),
        genres=tuple(_genres(rng, genre_taste[c]) for c in cluster_of),
        years=tuple(int(y) for y in years),
    )
    return SyntheticData(interactions, catalog)


def _years_and_releases(
    rng: np.random.Generator, config: SyntheticConfig
) -> tuple[IntArray, FloatArray]:
    recent = rng.random(config.items) < 0.65
    years = np.where(
        recent,
        1998 - np.minimum(rng.geometric(0.35, config.items) - 1, 8),
        rng.integers(1930, 1990, config.items),
    ).astype(np.int64)
    release = np.full(config.items, START - 3 * 365 * DAY)
    new = years >= 1997
    # Films of 1997-98 open during (or shortly before) the seven months of activity.
    release[new] = START + rng.uniform(-120.0, config.days - 10.0, int(new.sum())) * DAY
    return years, release


def _activity(rng: np.random.Generator, config: SyntheticConfig) -> IntArray:
    raw = rng.lognormal(0.0, 1.0, config.users)
    spare = config.interactions - config.min_per_user * config.users
    extra = np.floor(raw / raw.sum() * max(spare, 0))
    counts: IntArray = np.minimum(config.min_per_user + extra, config.items // 2).astype(np.int64)
    return counts


def _genres(rng: np.random.Generator, taste: FloatArray) -> tuple[str, ...]:
    n = 1 + int(rng.random() < 0.5) + int(rng.random() < 0.2)
    picked = rng.choice(len(GENRES), n, replace=False, p=taste)
    return tuple(GENRES[g] for g in sorted(picked))


def write_csv(data: SyntheticData, interactions_path: Path, items_path: Path | None = None) -> None:
    """Write the interactions (and optionally the items) in the CSV forms `data` reads."""
    rows = data.interactions
    assert rows.ratings is not None
    assert rows.timestamps is not None
    with interactions_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "item", "rating", "timestamp"])
        for u, i, r, t in zip(rows.users, rows.items, rows.ratings, rows.timestamps, strict=True):
            writer.writerow([rows.user_ids[u], rows.item_ids[i], int(r), int(t)])
    if items_path is None:
        return
    catalog = data.catalog
    with items_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "title", "genres", "year"])
        for item, title, genres, year in zip(
            catalog.item_ids, catalog.titles, catalog.genres, catalog.years, strict=True
        ):
            writer.writerow([item, title, "|".join(genres), "" if year is None else year])
