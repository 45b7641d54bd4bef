"""Shaping catalog rows into response bodies: cards for rows and search, the title page."""

from __future__ import annotations

from reelscale.catalog.models import Credit, Title
from reelscale.catalog.schemas import (
    ArtworkOut,
    CreditOut,
    EpisodeOut,
    GenreOut,
    SeasonOut,
    TitleCard,
    TitleOut,
)

CREW_ROLES = {"director", "writer", "creator", "producer"}


def to_card(title: Title) -> TitleCard:
    poster = next((a.url for a in title.artwork if a.kind == "poster"), None)
    synopsis = title.synopsis if len(title.synopsis) <= 240 else title.synopsis[:237] + "..."
    return TitleCard(
        id=title.id,
        kind=title.kind,
        name=title.name,
        release_year=title.release_year,
        maturity_rating=title.maturity_rating,
        genres=[g.name for g in title.genres],
        poster=poster,
        synopsis=synopsis,
    )


def to_out(title: Title) -> TitleOut:
    def credit(c: Credit) -> CreditOut:
        return CreditOut(
            person_id=c.person_id, name=c.person.name, role=c.role, character=c.character
        )

    return TitleOut(
        id=title.id,
        kind=title.kind,
        name=title.name,
        synopsis=title.synopsis,
        release_year=title.release_year,
        maturity_rating=title.maturity_rating,
        maturity_level=title.maturity_level,
        original_language=title.original_language,
        runtime_minutes=title.runtime_minutes,
        popularity=title.popularity,
        genres=[GenreOut(slug=g.slug, name=g.name) for g in title.genres],
        cast=[credit(c) for c in title.credits if c.role == "actor"],
        crew=[credit(c) for c in title.credits if c.role in CREW_ROLES],
        audio_languages=[lang.language for lang in title.languages if lang.kind == "audio"],
        subtitle_languages=[lang.language for lang in title.languages if lang.kind == "subtitle"],
        artwork=[ArtworkOut(kind=a.kind, url=a.url) for a in title.artwork],
        available_from=title.available_from,
        available_until=title.available_until,
        seasons=[
            SeasonOut(
                id=s.id,
                number=s.number,
                name=s.name,
                synopsis=s.synopsis,
                episodes=[
                    EpisodeOut(
                        id=e.id,
                        number=e.number,
                        name=e.name,
                        synopsis=e.synopsis,
                        runtime_minutes=e.runtime_minutes,
                    )
                    for e in s.episodes
                ],
            )
            for s in title.seasons
        ],
        created_at=title.created_at,
        updated_at=title.updated_at,
    )
