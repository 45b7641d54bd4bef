"""Catalog tables. Owned by this service alone."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from reelscale.core.sqltypes import UtcDateTime
from reelscale.core.types import NAMING_CONVENTION


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


title_genres = Table(
    "catalog_title_genres",
    Base.metadata,
    Column("title_id", ForeignKey("catalog_titles.id", ondelete="CASCADE"), primary_key=True),
    Column("genre_id", ForeignKey("catalog_genres.id", ondelete="CASCADE"), primary_key=True),
)


class Genre(Base):
    __tablename__ = "catalog_genres"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(60))


class Person(Base):
    __tablename__ = "catalog_people"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(120), unique=True)


class Title(Base):
    __tablename__ = "catalog_titles"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(8), index=True)  # movie | series
    name: Mapped[str] = mapped_column(String(200), index=True)
    synopsis: Mapped[str] = mapped_column(Text, default="")
    release_year: Mapped[int] = mapped_column(Integer, index=True)
    maturity_rating: Mapped[str] = mapped_column(String(8))
    maturity_level: Mapped[int] = mapped_column(Integer, index=True)
    original_language: Mapped[str] = mapped_column(String(16))
    runtime_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    popularity: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    available_from: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    available_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)

    genres: Mapped[list[Genre]] = relationship(secondary=title_genres, order_by=Genre.name)
    credits: Mapped[list[Credit]] = relationship(
        cascade="all, delete-orphan", order_by="Credit.position"
    )
    languages: Mapped[list[TitleLanguage]] = relationship(
        cascade="all, delete-orphan", order_by="TitleLanguage.position"
    )
    artwork: Mapped[list[Artwork]] = relationship(cascade="all, delete-orphan")
    seasons: Mapped[list[Season]] = relationship(
        cascade="all, delete-orphan", order_by="Season.number"
    )


class Credit(Base):
    __tablename__ = "catalog_credits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_titles.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("catalog_people.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # actor | director | writer | creator | producer
    character: Mapped[str | None] = mapped_column(String(120), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    person: Mapped[Person] = relationship(lazy="joined")


class TitleLanguage(Base):
    __tablename__ = "catalog_title_languages"

    title_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_titles.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # audio | subtitle
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # the first audio track is primary


class Artwork(Base):
    __tablename__ = "catalog_artwork"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_titles.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # poster | backdrop | logo
    url: Mapped[str] = mapped_column(String(500))


class Season(Base):
    __tablename__ = "catalog_seasons"
    __table_args__ = (UniqueConstraint("title_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    title_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_titles.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    synopsis: Mapped[str] = mapped_column(Text, default="")

    episodes: Mapped[list[Episode]] = relationship(
        cascade="all, delete-orphan", order_by="Episode.number"
    )


class Episode(Base):
    __tablename__ = "catalog_episodes"
    __table_args__ = (UniqueConstraint("season_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    season_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_seasons.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    synopsis: Mapped[str] = mapped_column(Text, default="")
    runtime_minutes: Mapped[int] = mapped_column(Integer)


class Revision(Base):
    """One row counting catalog writes. Every write transaction bumps it, so any replica can
    tell that the catalog changed (and rebuild its search index) from a single read, however
    writes interleave or clocks differ."""

    __tablename__ = "catalog_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
