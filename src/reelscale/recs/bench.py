"""`reelscale bench recs`: home-page latency from memory, on synthetic platform data.

`platform_sources` turns the planted-structure generator of `synthetic` into what the
platform's own sources would give: titles with languages, maturity levels, cast and
availability windows, and per-profile progress rows (watched, in progress, sampled). It
also plants a daily rhythm, so the context ranker has something to learn and the bench times
it: titles of the NIGHT_GENRES are mostly watched late in the evening on a TV, the rest
during the day on each profile's usual device.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np

from reelscale.recs.live import LiveSignals
from reelscale.recs.rows import RowBuilder, Viewer
from reelscale.recs.snapshot import BuildConfig, build_model
from reelscale.recs.sources import ProfileRecord, SignalRecord, StaticSources, TitleRecord
from reelscale.recs.synthetic import SyntheticConfig, generate

LANGUAGES = ("en", "en", "en", "es", "fr", "ja", "ko", "de")
DEVICES = ("web", "tv", "ios", "android", "ipad")
NIGHT_GENRES = frozenset({"Horror", "Thriller", "Crime", "Noir", "Mystery", "Sci-Fi", "War"})
LEVELS = (0, 7, 10, 13, 14, 17, 18)


def platform_sources(
    config: SyntheticConfig | None = None, *, now: datetime | None = None
) -> StaticSources:
    """Synthetic titles, profiles and signals shaped like the platform's, ending at `now`."""
    config = config or SyntheticConfig()
    now = now or datetime(2026, 1, 1, tzinfo=UTC)
    data = generate(config)
    rng = np.random.default_rng(config.seed + 1)
    rows, catalog = data.interactions, data.catalog
    counts = np.bincount(rows.items, minlength=rows.n_items)
    people = [f"Person {n}" for n in range(max(config.items // 3, 1))]
    titles = []
    for n, item in enumerate(catalog.item_ids):
        window = rng.random()
        titles.append(
            TitleRecord(
                id=item,
                name=catalog.titles[n],
                kind="series" if rng.random() < 0.3 else "movie",
                genres=catalog.genres[n],
                cast=tuple(rng.choice(people, 3, replace=False)),
                original_language=LANGUAGES[int(rng.integers(len(LANGUAGES)))],
                maturity_level=LEVELS[int(rng.integers(len(LEVELS)))],
                release_year=catalog.years[n],
                popularity=float(counts[n]) * float(rng.uniform(0.5, 1.5)),
                runtime_minutes=int(rng.integers(80, 150)),
                # A few titles have left or not yet arrived, so filtering is exercised.
                available_from=now + timedelta(days=30) if window < 0.03 else None,
                available_until=now - timedelta(days=1) if 0.03 <= window < 0.06 else None,
            )
        )
    assert rows.timestamps is not None
    assert rows.ratings is not None
    shift = now.timestamp() - float(rows.timestamps.max()) - 3600.0  # the last play an hour ago
    main_device = rng.integers(len(DEVICES), size=rows.n_users)
    signals = []
    for user, item, stamp, rating in zip(
        rows.users, rows.items, rows.timestamps, rows.ratings, strict=True
    ):
        duration = 60.0 * (titles[item].runtime_minutes or 90)
        # Ratings stand in for engagement: loved titles finished, others dropped part way.
        fraction = 1.0 if rating >= 4 else float(rng.uniform(0.02, 0.85))
        moment = datetime.fromtimestamp(float(stamp) + shift, UTC)
        night = bool(NIGHT_GENRES & set(titles[item].genres)) == (rng.random() < 0.8)
        hour = int(rng.integers(20, 24)) if night else int(rng.integers(8, 18))
        moment = moment.replace(hour=hour)
        if moment > now - timedelta(minutes=5):
            moment -= timedelta(days=1)
        device = DEVICES[
            main_device[user] if rng.random() < 0.8 else int(rng.integers(len(DEVICES)))
        ]
        signals.append(
            SignalRecord(
                profile_id=rows.user_ids[user],
                title_id=rows.item_ids[item],
                position_s=fraction * duration,
                duration_s=duration,
                watched=fraction >= 0.9,
                updated_at=moment,
                thumb=1 if rating == 5 and rng.random() < 0.2 else (-1 if rating == 1 else 0),
                device="tv" if night and rng.random() < 0.7 else device,
            )
        )
    profiles = [
        ProfileRecord(id=u, language=LANGUAGES[int(rng.integers(len(LANGUAGES)))])
        for u in rows.user_ids
    ]
    return StaticSources(titles=titles, signals=signals, profiles=profiles)


def serving_latency(
    *,
    profiles: int = 1000,
    titles: int = 1700,
    interactions: int = 100_000,
    requests: int = 10_000,
    seed: int = 42,
) -> dict[str, float | int | str]:
    """Build a model on synthetic data and time `home_rows` for random profiles, at random
    hours of the week and on random devices (so the context ranker runs for each)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    config = SyntheticConfig(users=profiles, items=titles, interactions=interactions, seed=seed)
    sources = platform_sources(config, now=now)
    started = time.perf_counter()
    model = build_model(
        titles=sources.titles,
        signals=sources.signals,
        profiles=sources.profiles,
        now=now,
        version=1,
        config=BuildConfig(seed=seed),
    )
    build_s = time.perf_counter() - started
    live, builder = LiveSignals(), RowBuilder()
    live.rebase(model)
    live.trending(model)
    rng = np.random.default_rng(seed)
    ids = [p.id for p in sources.profiles] + [f"new-{n}" for n in range(profiles // 20)]
    ceilings = (None, 18, 13, 7)
    devices = (None, *DEVICES)
    timings = np.empty(requests)
    for n in range(requests):
        viewer = Viewer(
            profile_id=ids[int(rng.integers(len(ids)))],
            max_maturity=ceilings[int(rng.integers(len(ceilings)))],
            device=devices[int(rng.integers(len(devices)))],
        )
        moment = now + timedelta(hours=float(rng.uniform(0, 7 * 24)))
        begin = time.perf_counter()
        builder.home(model=model, live=live, viewer=viewer, now=moment)
        timings[n] = time.perf_counter() - begin
    return {
        "home_rows_ms_p50": round(float(np.percentile(timings, 50)) * 1000, 3),
        "home_rows_ms_p99": round(float(np.percentile(timings, 99)) * 1000, 3),
        "home_rows_ms_max": round(float(timings.max()) * 1000, 3),
        "profiles": profiles,
        "titles": titles,
        "requests": requests,
        "build_s": round(build_s, 2),
        "algorithm": model.algorithm,
        "context_ranker": bool(model.stats.get("context_kept")),
    }
