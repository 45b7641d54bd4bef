"""Accounts tables. Owned by this service alone; nothing else reads them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from reelscale.core.sqltypes import UtcDateTime
from reelscale.core.types import NAMING_CONVENTION


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Member(Base):
    __tablename__ = "accounts_members"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default="member")
    plan: Mapped[str] = mapped_column(String(16), default="standard")
    # Kept on the row so "at most five" is one conditional UPDATE, safe under concurrency.
    profile_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    profiles: Mapped[list[Profile]] = relationship(
        back_populates="member", cascade="all, delete-orphan", order_by="Profile.created_at"
    )


class Profile(Base):
    __tablename__ = "accounts_profiles"
    __table_args__ = (UniqueConstraint("member_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_members.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(50))
    is_kids: Mapped[bool] = mapped_column(Boolean, default=False)
    max_maturity: Mapped[int] = mapped_column(Integer)
    pin_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    avatar: Mapped[str] = mapped_column(String(32), default="red")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    member: Mapped[Member] = relationship(back_populates="profiles")


class PickedGenre(Base):
    """An onboarding pick: a catalog genre, by its slug, at its place in the member's order."""

    __tablename__ = "accounts_picked_genres"

    profile_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    slug: Mapped[str] = mapped_column(String(60))  # the width of catalog_genres.slug


class PickedTitle(Base):
    """An onboarding pick: a catalog title the profile says it likes, in the member's order.

    Only the id: accounts reads no catalog table, and recommendations ignore an id the
    catalog does not have."""

    __tablename__ = "accounts_picked_titles"

    profile_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    title_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class LoginSession(Base):
    """One sign-in: the family that every rotated refresh token of it belongs to."""

    __tablename__ = "accounts_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_members.id", ondelete="CASCADE"), index=True
    )
    profile_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    scope: Mapped[str] = mapped_column(String(1000))  # what the sign-in asked for, kept on refresh
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RefreshToken(Base):
    __tablename__ = "accounts_refresh_tokens"

    # Only a hash is stored: a copy of the table does not let anyone sign in.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_sessions.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SigningKey(Base):
    __tablename__ = "accounts_signing_keys"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)  # encrypted with the platform secret
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class FailedAttempt(Base):
    """One failed login or PIN attempt, under each key it counts against."""

    __tablename__ = "accounts_failed_attempts"
    __table_args__ = (Index("ix_accounts_failed_attempts_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
