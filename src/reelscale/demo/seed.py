"""Deterministic demo data: 240 titles with believable metadata, and a household of members.

The same seed always gives the same catalog with the same ids, and seeding is idempotent:
each service's part is written in one transaction, and skipped if it is already there.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select

from reelscale.accounts import profiles as account_profiles
from reelscale.accounts import service as accounts_service
from reelscale.accounts.models import Member
from reelscale.accounts.roles import Role
from reelscale.accounts.schemas import ProfileIn
from reelscale.app import create_app
from reelscale.catalog import service as catalog_service
from reelscale.catalog.models import Title
from reelscale.catalog.schemas import TitleIn
from reelscale.core.settings import Settings
from reelscale.demo import vocabulary as v

SEED = 20261121
TITLE_COUNT = 240
NAMESPACE = uuid.UUID("6f1c7c8e-2f55-4b8a-9a53-0c5f3d1e7a10")

CREDENTIALS = [
    ("viewer@example.com", "watch-reelscale", "member (3 profiles, 1 kids)"),
    ("editor@example.com", "edit-reelscale", "editor (can write catalog)"),
    ("admin@example.com", "admin-reelscale", "admin"),
]


@dataclass(frozen=True)
class Seeded:
    titles: int
    members: int
    videos: int = 0


def demo_id(kind: str, n: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{kind}-{n}")


def generate_titles(count: int = TITLE_COUNT, seed: int = SEED) -> list[TitleIn]:
    """The demo catalog. Pure: the same arguments give the same titles."""
    rng = random.Random(seed)
    names: set[str] = set()
    titles = []
    for n in range(count):
        genre = rng.choice(list(v.GENRES))
        kind = "series" if rng.random() < 0.3 else "movie"
        name = _unique(names, lambda g=genre: _title_name(rng, g))
        titles.append(_title(rng, n, name, genre, kind))
    return titles


def _unique(taken: set[str], make: object) -> str:
    assert callable(make)
    for _ in range(50):
        name = str(make())
        if name not in taken:
            taken.add(name)
            return name
    raise RuntimeError("ran out of title names")


def _title_name(rng: random.Random, genre: str) -> str:
    if genre in ("Kids", "Animation", "Family") and rng.random() < 0.7:
        hero = rng.choice(v.KIDS_NOUNS)
        return rng.choice(
            [
                f"The {rng.choice(v.ADJECTIVES)} {hero}",
                f"{hero} and the {rng.choice(v.NOUNS)}",
                f"{rng.choice(v.FIRST_NAMES)} the {hero}",
            ]
        )
    return rng.choice(
        [
            f"The {rng.choice(v.ADJECTIVES)} {rng.choice(v.NOUNS)}",
            f"{rng.choice(v.NOUNS)} of {rng.choice(v.PLACES)}",
            f"{rng.choice(v.ADJECTIVES)} {rng.choice(v.NOUNS)}",
            f"{rng.choice(v.FIRST_NAMES)}'s {rng.choice(v.NOUNS)}",
            f"{rng.choice(v.NOUNS)}: {rng.choice(v.ADJECTIVES)} {rng.choice(v.NOUNS)}",
        ]
    )


def _person(rng: random.Random) -> str:
    return f"{rng.choice(v.FIRST_NAMES)} {rng.choice(v.LAST_NAMES)}"


def _synopsis(rng: random.Random, genre: str, name: str) -> str:
    if genre == "Kids":
        return f"{name.removeprefix('The ')} {rng.choice(v.KIDS_PLOTS)}."
    if genre == "Documentary":
        return (
            f"A portrait of {rng.choice(v.PLACES)} told through {rng.choice(v.HEROES)} "
            f"and {rng.choice(v.DISCOVERIES)}."
        )
    return (
        f"When {rng.choice(v.HEROES)} discovers {rng.choice(v.DISCOVERIES)}, "
        f"they must {rng.choice(v.GOALS)} before {rng.choice(v.DEADLINES)}."
    )


def _title(rng: random.Random, n: int, name: str, genre: str, kind: str) -> TitleIn:
    profile = v.GENRES[genre]
    ratings = profile.ratings
    tv = [r for r in ratings if r.startswith("TV-")] or ratings
    film = [r for r in ratings if not r.startswith("TV-")] or ratings
    rating = rng.choice(tv if kind == "series" else film)
    companions = v.COMPANIONS[genre]
    genres = [genre, *rng.sample(companions, k=min(len(companions), rng.randint(0, 2)))]
    language = rng.choices(v.LANGUAGES, weights=v.LANGUAGE_WEIGHTS)[0]
    dubs = rng.sample([lang for lang in v.LANGUAGES if lang != language], k=rng.randint(0, 3))
    subtitles = sorted(set(rng.sample(v.LANGUAGES, k=rng.randint(3, 8))) | {language})
    cast = {_person(rng) for _ in range(rng.randint(4, 8))}
    credits: list[dict[str, object]] = [
        {"name": person, "role": "actor", "character": rng.choice(v.FIRST_NAMES)}
        for person in sorted(cast)
    ]
    credits.append({"name": _person(rng), "role": "creator" if kind == "series" else "director"})
    credits.append({"name": _person(rng), "role": "writer"})
    low, high = profile.runtime
    seasons = []
    if kind == "series":
        for number in range(1, rng.randint(1, 4) + 1):
            episode_minutes = rng.choice([22, 25, 30, 45, 50, 55])
            seasons.append(
                {
                    "number": number,
                    "episodes": [
                        {
                            "number": e,
                            "name": f"{rng.choice(v.ADJECTIVES)} {rng.choice(v.NOUNS)}",
                            "synopsis": _synopsis(rng, genre, name),
                            "runtime_minutes": episode_minutes + rng.randint(-3, 4),
                        }
                        for e in range(1, rng.randint(6, 10) + 1)
                    ],
                }
            )
    roll = rng.random()
    available_from = datetime(2027, 3, 1, tzinfo=UTC) if roll < 0.04 else None  # coming soon
    available_until = datetime(2027, 12, 31, tzinfo=UTC) if 0.04 <= roll < 0.08 else None
    title_id = demo_id("title", n)
    return TitleIn.model_validate(
        {
            "kind": kind,
            "name": name,
            "synopsis": _synopsis(rng, genre, name),
            "release_year": rng.randint(1975, 2026)
            if rng.random() < 0.4
            else rng.randint(2012, 2026),
            "maturity_rating": rating,
            "original_language": language,
            "runtime_minutes": rng.randint(low, high) if kind == "movie" else None,
            "genres": genres,
            "credits": credits,
            "audio_languages": [language, *dubs],
            "subtitle_languages": subtitles,
            "artwork": [
                {"kind": "poster", "url": f"/v1/catalog/artwork/{title_id}/poster.svg"},
                {"kind": "backdrop", "url": f"/v1/catalog/artwork/{title_id}/backdrop.svg"},
            ],
            "popularity": round(1000 * rng.paretovariate(1.2), 2),
            "available_from": available_from,
            "available_until": available_until,
            "seasons": seasons,
        }
    )


async def seed(
    settings: Settings, *, progress: Console | None = None, videos: bool = True
) -> Seeded:
    """Write the demo data unless it is already there."""
    from reelscale.demo.videos import seed_videos  # imports this module's helpers

    app = create_app(settings, "all")
    platform = app.state.platform
    await platform.supervisor.start()
    try:
        titles = await _seed_catalog(app, progress)
        members = await _seed_members(app)
        made = await seed_videos(app, progress) if videos else 0
    finally:
        await platform.supervisor.stop()
    return Seeded(titles=titles, members=members, videos=made)


async def _seed_catalog(app: object, console: Console | None) -> int:
    platform = app.state.platform  # type: ignore[attr-defined]
    async with platform.db.session() as db_session:
        if await db_session.scalar(select(func.count(Title.id))):
            return 0
    titles = generate_titles()
    now = platform.clock.now()
    with Progress(console=console, transient=True, disable=console is None) as bar:
        task = bar.add_task("Seeding catalog", total=len(titles))
        async with platform.db.transaction() as db_session:
            for n, data in enumerate(titles):
                await catalog_service.create_title(
                    db_session=db_session, data=data, now=now, title_id=demo_id("title", n)
                )
                bar.advance(task)
    return len(titles)


async def _seed_members(app: object) -> int:
    platform = app.state.platform  # type: ignore[attr-defined]
    ctx = app.state.accounts.ctx  # type: ignore[attr-defined]
    async with platform.db.session() as db_session:
        if await db_session.scalar(select(func.count(Member.id))):
            return 0
    households = {
        "viewer@example.com": [
            ProfileIn(name="Alex", avatar="red"),
            ProfileIn(name="Sam", avatar="blue", pin="1234"),
            ProfileIn(name="Kids", is_kids=True, avatar="yellow"),
        ],
        "editor@example.com": [ProfileIn(name="Editor", avatar="green")],
        "admin@example.com": [ProfileIn(name="Admin", avatar="purple")],
    }
    roles = {
        "viewer@example.com": Role.MEMBER,
        "editor@example.com": Role.EDITOR,
        "admin@example.com": Role.ADMIN,
    }
    # Hash first: argon2 is slow and must not hold the write transaction open.
    password_hashes = {email: await ctx.hasher.hash(pw) for email, pw, _ in CREDENTIALS}
    pin_hashes = {
        (email, p.name): await ctx.hasher.hash(p.pin)
        for email, profiles in households.items()
        for p in profiles
        if p.pin
    }
    async with platform.db.transaction() as db_session:
        for n, (email, _password, _what) in enumerate(CREDENTIALS):
            member = await accounts_service.create_member(
                db_session=db_session,
                ctx=ctx,
                email=email,
                password_hash=password_hashes[email],
                display_name=email.split("@")[0].title(),
                role=roles[email],
                plan="premium",
                member_id=demo_id("member", n),
            )
            for p, profile in enumerate(households[email]):
                await account_profiles.create_profile(
                    db_session=db_session,
                    ctx=ctx,
                    member_id=member.id,
                    data=profile,
                    pin_hash=pin_hashes.get((email, profile.name)),
                    profile_id=demo_id(f"profile-{n}", p),
                )
    return len(CREDENTIALS)
