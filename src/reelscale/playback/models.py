"""Playback tables: play sessions (stream limits, heartbeats), per-profile progress, thumbs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Float, Index, MetaData, SmallInteger, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from reelscale.core.sqltypes import UtcDateTime
from reelscale.core.types import NAMING_CONVENTION


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PlaySession(Base):
    __tablename__ = "playback_sessions"
    __table_args__ = (Index("ix_playback_sessions_member_live", "member_id", "ended_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    profile_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    title_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    asset_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    device: Mapped[str] = mapped_column(String(64), default="web")
    # Kept from authorization so heartbeats need not ask media for it again.
    duration_s: Mapped[float] = mapped_column(Float)
    position_s: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Progress(Base):
    """Where a profile is in a title: the resume point, and whether it was watched."""

    __tablename__ = "playback_progress"

    profile_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    title_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    position_s: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)
    watched: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Thumb(Base):
    """A profile's thumbs up or down on a title: a signal for recommendations."""

    __tablename__ = "playback_thumbs"

    profile_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    title_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    thumb: Mapped[int] = mapped_column(SmallInteger)  # -1 or 1; cleared thumbs are deleted
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
