"""Catalog logic: writing titles all-or-nothing, and reading them within a viewer's limits."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from reelscale.catalog.client import RecsTitle
from reelscale.catalog.models import (
    Artwork,
    Credit,
    Episode,
    Genre,
    Person,
    Revision,
    Season,
    Title,
    TitleLanguage,
    title_genres,
)
from reelscale.catalog.schemas import (
    ArtworkIn,
    CreditIn,
    GenreCount,
    SearchHit,
    SeasonIn,
    TitleIn,
    TitleUpdate,
)
from reelscale.catalog.search import SearchIndex
from reelscale.catalog.shapes import to_card
from reelscale.core.errors import Conflict, NotFound, Unprocessable
from reelscale.core.maturity import level_of

SLUG_MAX = 60  # the width of catalog_genres.slug


@dataclass(frozen=True)
class Viewer:
    """What limits a reader: a maturity ceiling and whether unavailable titles show."""

    now: datetime
    max_maturity: int | None = None
    sees_unavailable: bool = False

    def allows(self, title: Title) -> bool:
        if self.max_maturity is not None and title.maturity_level > self.max_maturity:
            return False
        if self.sees_unavailable:
            return True
        started = title.available_from is None or title.available_from <= self.now
        ended = title.available_until is not None and title.available_until <= self.now
        return started and not ended

    def filter(self, query: Select[Title]) -> Select[Title]:
        if self.max_maturity is not None:
            query = query.where(Title.maturity_level <= self.max_maturity)
        if not self.sees_unavailable:
            query = query.where(
                or_(Title.available_from.is_(None), Title.available_from <= self.now),
                or_(Title.available_until.is_(None), Title.available_until > self.now),
            )
        return query


def slugify(name: str) -> str:
    """A URL-safe key for a genre, keeping letters of any script ("Драма" -> "драма")."""
    slug = re.sub(r"[\W_]+", "-", name.casefold()).strip("-")
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    if not slug:  # names of only punctuation still need a key of their own
        return f"g-{digest}"
    if len(slug) > SLUG_MAX:  # casefolding can lengthen a name ("ß" -> "ss")
        return f"{slug[: SLUG_MAX - 11]}-{digest}"
    return slug


def _full_title() -> Select[Title]:
    return select(Title).options(
        selectinload(Title.genres),
        selectinload(Title.credits).joinedload(Credit.person),
        selectinload(Title.languages),
        selectinload(Title.artwork),
        selectinload(Title.seasons).selectinload(Season.episodes),
    )


# ------------------------------------------------------------------------ writes
async def create_title(
    *, db_session: AsyncSession, data: TitleIn, now: datetime, title_id: uuid.UUID | None = None
) -> Title:
    """Insert a title with everything it carries, in the caller's transaction."""
    title = Title(
        id=title_id or uuid.uuid4(),
        kind=data.kind,
        name=data.name,
        synopsis=data.synopsis,
        release_year=data.release_year,
        maturity_rating=data.maturity_rating,
        maturity_level=level_of(data.maturity_rating),
        original_language=data.original_language,
        runtime_minutes=data.runtime_minutes,
        popularity=data.popularity,
        available_from=data.available_from,
        available_until=data.available_until,
        created_at=now,
        updated_at=now,
    )
    title.genres = await _genres(db_session, data.genres)
    title.credits = await _credits(db_session, data.credits)
    title.languages = _languages(data.audio_languages, data.subtitle_languages)
    title.artwork = _artwork(data.artwork)
    title.seasons = [_season(season) for season in data.seasons]
    db_session.add(title)
    await _flush(db_session, "a title with this id already exists")
    await bump_revision(db_session)
    return await get_title(db_session=db_session, title_id=title.id)


async def update_title(
    *, db_session: AsyncSession, title_id: uuid.UUID, data: TitleUpdate, now: datetime
) -> Title:
    title = await get_title(db_session=db_session, title_id=title_id)
    fields = data.model_dump(exclude_unset=True)
    for name in (
        "name",
        "synopsis",
        "release_year",
        "original_language",
        "runtime_minutes",
        "popularity",
        "available_from",
        "available_until",
    ):
        if name in fields:
            setattr(title, name, fields[name])
    if data.maturity_rating is not None:
        title.maturity_rating = data.maturity_rating
        title.maturity_level = level_of(data.maturity_rating)
    if data.genres is not None:
        title.genres = await _genres(db_session, data.genres)
    if data.credits is not None:
        title.credits = await _credits(db_session, data.credits)
    if data.audio_languages is not None or data.subtitle_languages is not None:
        current = {
            kind: [lang.language for lang in title.languages if lang.kind == kind]
            for kind in ("audio", "subtitle")
        }
        title.languages = _languages(
            data.audio_languages if data.audio_languages is not None else current["audio"],
            data.subtitle_languages if data.subtitle_languages is not None else current["subtitle"],
        )
    if data.artwork is not None:
        title.artwork = _artwork(data.artwork)
    if (
        title.available_from
        and title.available_until
        and title.available_until <= title.available_from
    ):
        raise Unprocessable("available_until must come after available_from")
    title.updated_at = now
    await _flush(db_session, "the update clashes with existing data")
    await bump_revision(db_session)
    return await get_title(db_session=db_session, title_id=title_id)


async def add_season(
    *, db_session: AsyncSession, title_id: uuid.UUID, data: SeasonIn, now: datetime
) -> Title:
    title = await get_title(db_session=db_session, title_id=title_id)
    if title.kind != "series":
        raise Conflict("only a series has seasons")
    if any(season.number == data.number for season in title.seasons):
        raise Conflict(f"season {data.number} already exists")
    title.seasons.append(_season(data))
    title.updated_at = now
    await _flush(db_session, f"season {data.number} already exists")
    await bump_revision(db_session)
    return await get_title(db_session=db_session, title_id=title_id)


async def delete_title(*, db_session: AsyncSession, title_id: uuid.UUID) -> None:
    title = await get_title(db_session=db_session, title_id=title_id)
    await db_session.delete(title)
    await bump_revision(db_session)


async def _flush(db_session: AsyncSession, conflict: str) -> None:
    try:
        await db_session.flush()
    except IntegrityError:
        raise Conflict(conflict) from None


def _insert_missing(db_session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, so two writers adding the same genre or person
    at once both succeed: the second waits for the first and then finds its row."""
    insert = pg_insert if db_session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return db_session.execute(insert(table).values(rows).on_conflict_do_nothing())


async def _genres(db_session: AsyncSession, names: Sequence[str]) -> list[Genre]:
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(slugify(name), name)
    if not wanted:
        return []
    # Sorted, so concurrent writers take row locks in one order and cannot deadlock.
    await _insert_missing(
        db_session, Genre, [{"slug": slug, "name": wanted[slug]} for slug in sorted(wanted)]
    )
    found = {
        genre.slug: genre
        for genre in await db_session.scalars(select(Genre).where(Genre.slug.in_(wanted)))
    }
    return [found[slug] for slug in wanted]


async def _credits(db_session: AsyncSession, credits: Sequence[CreditIn]) -> list[Credit]:
    names = list(dict.fromkeys(credit.name for credit in credits))
    if not names:
        return []
    await _insert_missing(
        db_session, Person, [{"id": uuid.uuid4(), "name": n} for n in sorted(names)]
    )
    people = {
        person.name: person
        for person in await db_session.scalars(select(Person).where(Person.name.in_(names)))
    }
    return [
        Credit(person=people[c.name], role=c.role, character=c.character, position=position)
        for position, c in enumerate(credits)
    ]


async def bump_revision(db_session: AsyncSession) -> None:
    """Count a catalog write; search indexes everywhere rebuild when the count moves."""
    await db_session.execute(update(Revision).values(value=Revision.value + 1))


def _languages(audio: Sequence[str], subtitles: Sequence[str]) -> list[TitleLanguage]:
    return [
        TitleLanguage(kind=kind, language=lang, position=n)
        for kind, langs in (("audio", audio), ("subtitle", subtitles))
        for n, lang in enumerate(dict.fromkeys(langs))
    ]


def _artwork(items: Sequence[ArtworkIn]) -> list[Artwork]:
    return [Artwork(kind=item.kind, url=item.url) for item in items]


def _season(data: SeasonIn) -> Season:
    return Season(
        number=data.number,
        name=data.name or f"Season {data.number}",
        synopsis=data.synopsis,
        episodes=[
            Episode(
                number=e.number, name=e.name, synopsis=e.synopsis, runtime_minutes=e.runtime_minutes
            )
            for e in data.episodes
        ],
    )


# ------------------------------------------------------------------------ reads
async def get_title(
    *, db_session: AsyncSession, title_id: uuid.UUID, viewer: Viewer | None = None
) -> Title:
    """One title with everything on its page. Hidden from a viewer it does not suit: 404."""
    title = await db_session.scalar(
        _full_title().where(Title.id == title_id).execution_options(populate_existing=True)
    )
    if title is None or (viewer is not None and not viewer.allows(title)):
        raise NotFound("no such title")
    return title


async def list_titles(
    *,
    db_session: AsyncSession,
    viewer: Viewer,
    genre: str | None = None,
    kind: str | None = None,
    language: str | None = None,
    sort: str = "popular",
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[Title], int]:
    """A page of titles (most popular first, or newest, or by name) and how many match."""
    query = viewer.filter(select(Title))
    if genre is not None:
        query = query.where(
            Title.id.in_(
                select(title_genres.c.title_id)
                .join(Genre, Genre.id == title_genres.c.genre_id)
                .where(Genre.slug == genre)
            )
        )
    if kind is not None:
        query = query.where(Title.kind == kind)
    if language is not None:
        query = query.where(Title.original_language == language)
    total = int(await db_session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    orders: dict[str, tuple[Any, ...]] = {
        "popular": (Title.popularity.desc(), Title.name, Title.id),
        "new": (Title.release_year.desc(), Title.popularity.desc(), Title.id),
        "name": (Title.name, Title.id),
    }
    page = query.order_by(*orders[sort]).limit(limit).offset(offset)
    ids = list(await db_session.scalars(page.with_only_columns(Title.id)))
    if not ids:
        return [], total
    rows = await db_session.scalars(
        select(Title)
        .options(selectinload(Title.genres), selectinload(Title.artwork))
        .where(Title.id.in_(ids))
    )
    by_id = {row.id: row for row in rows}
    return [by_id[i] for i in ids if i in by_id], total


async def list_genres(*, db_session: AsyncSession, viewer: Viewer) -> list[GenreCount]:
    visible = viewer.filter(select(Title.id)).subquery()
    rows = await db_session.execute(
        select(Genre.slug, Genre.name, func.count(title_genres.c.title_id))
        .join(title_genres, title_genres.c.genre_id == Genre.id)
        .join(visible, and_(visible.c.id == title_genres.c.title_id))
        .group_by(Genre.slug, Genre.name)
        .order_by(Genre.name)
    )
    return [GenreCount(slug=slug, name=name, titles=count) for slug, name, count in rows]


async def search(
    *, db_session: AsyncSession, index: SearchIndex, viewer: Viewer, text: str, limit: int
) -> list[SearchHit]:
    """Typo-tolerant search, limited to what the viewer may see."""
    await index.refresh(db_session)
    # Fuzzy scoring is CPU work over the whole corpus: keep it off the event loop.
    matches = await asyncio.to_thread(index.query, text)
    if not matches:
        return []
    query = viewer.filter(
        select(Title)
        .options(selectinload(Title.genres), selectinload(Title.artwork))
        .where(Title.id.in_([m.title_id for m in matches]))
    )
    visible = {title.id: title for title in await db_session.scalars(query)}
    hits = [
        SearchHit(
            title=to_card(visible[m.title_id]), score=m.score, matched=m.field, matched_text=m.text
        )
        for m in matches
        if m.title_id in visible
    ]
    return hits[:limit]


async def get_artwork_facts(*, db_session: AsyncSession, title_id: uuid.UUID) -> Title:
    """A title with just what its artwork shows (no seasons, credits or languages)."""
    title = await db_session.scalar(
        select(Title).options(selectinload(Title.genres)).where(Title.id == title_id)
    )
    if title is None:
        raise NotFound("no such title")
    return title


async def recs_titles(*, db_session: AsyncSession) -> list[RecsTitle]:
    """Every title's features, in one query, for training recommendations."""
    rows = await db_session.scalars(
        select(Title).options(
            selectinload(Title.genres), selectinload(Title.credits).joinedload(Credit.person)
        )
    )
    return [
        RecsTitle(
            id=t.id,
            name=t.name,
            kind=t.kind,
            genres=[g.name for g in t.genres],
            cast=[c.person.name for c in t.credits if c.role == "actor"],
            original_language=t.original_language,
            maturity_level=t.maturity_level,
            release_year=t.release_year,
            popularity=t.popularity,
            runtime_minutes=t.runtime_minutes,
            available_from=t.available_from,
            available_until=t.available_until,
        )
        for t in rows.unique()
    ]


async def genre_exists(*, db_session: AsyncSession, slug: str) -> bool:
    return await db_session.scalar(select(Genre.id).where(Genre.slug == slug)) is not None
