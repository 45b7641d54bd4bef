"""Catalog request and response bodies. Inputs refuse unknown fields and bound every size."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from reelscale.core.maturity import Rating
from reelscale.core.types import NO_CONTROLS, NO_CONTROLS_MULTILINE, Input, Language

Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_CONTROLS),
]
LongText = Annotated[str, StringConstraints(max_length=4000, pattern=NO_CONTROLS_MULTILINE)]
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=NO_CONTROLS),
]
GenreName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=60, pattern=r"^[\w][\w &'\-]*$"
    ),
]
ArtworkUrl = Annotated[
    str, StringConstraints(max_length=500, pattern=r"^(https?://|/)[^\s<>\"']+$")
]
Kind = Literal["movie", "series"]
CreditRole = Literal["actor", "director", "writer", "creator", "producer"]
Year = Annotated[int, Field(ge=1870, le=2100)]
Minutes = Annotated[int, Field(ge=1, le=1440)]


class CreditIn(Input):
    name: PersonName
    role: CreditRole = "actor"
    character: PersonName | None = None


class ArtworkIn(Input):
    kind: Literal["poster", "backdrop", "logo"]
    url: ArtworkUrl


class EpisodeIn(Input):
    number: int = Field(ge=1, le=1000)
    name: Text
    synopsis: LongText = ""
    runtime_minutes: Minutes


class SeasonIn(Input):
    number: int = Field(ge=0, le=200)
    name: Text | None = None
    synopsis: LongText = ""
    episodes: list[EpisodeIn] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _unique_episode_numbers(self) -> SeasonIn:
        numbers = [e.number for e in self.episodes]
        if len(numbers) != len(set(numbers)):
            raise ValueError("episode numbers repeat within the season")
        return self


class TitleIn(Input):
    kind: Kind
    name: Text
    synopsis: LongText = ""
    release_year: Year
    maturity_rating: Rating
    original_language: Language
    runtime_minutes: Minutes | None = None
    genres: list[GenreName] = Field(default_factory=list, max_length=10)
    credits: list[CreditIn] = Field(default_factory=list, max_length=200)
    audio_languages: list[Language] = Field(default_factory=list, max_length=50)
    subtitle_languages: list[Language] = Field(default_factory=list, max_length=100)
    artwork: list[ArtworkIn] = Field(default_factory=list, max_length=20)
    available_from: datetime | None = None
    available_until: datetime | None = None
    popularity: float = Field(default=0.0, ge=0, le=1e9)
    seasons: list[SeasonIn] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> TitleIn:
        if self.kind == "movie" and self.seasons:
            raise ValueError("a movie has no seasons")
        numbers = [s.number for s in self.seasons]
        if len(numbers) != len(set(numbers)):
            raise ValueError("season numbers repeat")
        _check_window(self.available_from, self.available_until)
        return self


# Columns that cannot be empty: PATCH may leave them out, but not set them to null.
_REQUIRED_ON_UPDATE = (
    "name",
    "synopsis",
    "release_year",
    "maturity_rating",
    "original_language",
    "popularity",
    "genres",
    "credits",
    "audio_languages",
    "subtitle_languages",
    "artwork",
)


class TitleUpdate(Input):
    name: Text | None = None
    synopsis: LongText | None = None
    release_year: Year | None = None
    maturity_rating: Rating | None = None
    original_language: Language | None = None
    runtime_minutes: Minutes | None = None
    genres: list[GenreName] | None = Field(default=None, max_length=10)
    credits: list[CreditIn] | None = Field(default=None, max_length=200)
    audio_languages: list[Language] | None = Field(default=None, max_length=50)
    subtitle_languages: list[Language] | None = Field(default=None, max_length=100)
    artwork: list[ArtworkIn] | None = Field(default=None, max_length=20)
    available_from: datetime | None = None
    available_until: datetime | None = None
    popularity: float | None = Field(default=None, ge=0, le=1e9)

    @model_validator(mode="after")
    def _window(self) -> TitleUpdate:
        nulled = [
            f
            for f in _REQUIRED_ON_UPDATE
            if f in self.model_fields_set and getattr(self, f) is None
        ]
        if nulled:
            raise ValueError(f"cannot be null: {', '.join(nulled)}")
        _check_window(self.available_from, self.available_until)
        return self


def _check_window(start: datetime | None, end: datetime | None) -> None:
    for moment in (start, end):
        if moment is None:
            continue
        if moment.tzinfo is None:
            raise ValueError("availability times need a timezone, e.g. 2026-01-01T00:00:00Z")
        if not 1900 <= moment.year <= 2200:  # also keeps UTC conversion from overflowing
            raise ValueError("availability times must fall between the years 1900 and 2200")
    if start is not None and end is not None and end <= start:
        raise ValueError("available_until must come after available_from")


class GenreOut(BaseModel):
    slug: str
    name: str


class GenreCount(GenreOut):
    titles: int


class CreditOut(BaseModel):
    person_id: uuid.UUID
    name: str
    role: str
    character: str | None = None


class ArtworkOut(BaseModel):
    kind: str
    url: str


class EpisodeOut(BaseModel):
    id: uuid.UUID
    number: int
    name: str
    synopsis: str
    runtime_minutes: int


class SeasonOut(BaseModel):
    id: uuid.UUID
    number: int
    name: str
    synopsis: str
    episodes: list[EpisodeOut]


class TitleCard(BaseModel):
    """What a row or a search result shows."""

    id: uuid.UUID
    kind: str
    name: str
    release_year: int
    maturity_rating: str
    genres: list[str]
    poster: str | None = None
    synopsis: str


class TitleOut(BaseModel):
    """The title page."""

    id: uuid.UUID
    kind: str
    name: str
    synopsis: str
    release_year: int
    maturity_rating: str
    maturity_level: int
    original_language: str
    runtime_minutes: int | None
    popularity: float
    genres: list[GenreOut]
    cast: list[CreditOut]
    crew: list[CreditOut]
    audio_languages: list[str]
    subtitle_languages: list[str]
    artwork: list[ArtworkOut]
    available_from: datetime | None
    available_until: datetime | None
    seasons: list[SeasonOut]
    created_at: datetime
    updated_at: datetime


class TitlePage(BaseModel):
    items: list[TitleCard]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class SearchHit(BaseModel):
    title: TitleCard
    score: float
    matched: Literal["title", "cast", "genre"]
    matched_text: str
