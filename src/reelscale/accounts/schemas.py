"""Accounts request and response bodies. Inputs refuse unknown fields."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from reelscale.accounts.roles import Role
from reelscale.core.maturity import ADULT_LEVEL
from reelscale.core.types import NO_CONTROLS, Input, Language

# Printable text without control characters; names are shown to people, not used as paths.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=NO_CONTROLS),
]
Pin = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]
Avatar = Literal["red", "blue", "green", "yellow", "purple", "teal", "orange", "pink"]


class SignupIn(Input):
    email: EmailStr = Field(max_length=254)
    password: Password
    display_name: Name | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class LoginIn(Input):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=1, max_length=256)
    device_token: str | None = Field(default=None, max_length=200)
    scope: str | None = Field(
        default=None,
        max_length=1000,
        description="Space-separated scopes to narrow the token to; default: all the role has.",
    )

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("scope")
    @classmethod
    def _some_scope(cls, value: str | None) -> str | None:
        if value is not None and not value.split():
            raise ValueError("name at least one scope, or leave scope out for all")
        return value


class RefreshIn(Input):
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutIn(Input):
    refresh_token: str | None = Field(default=None, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str | None = None
    scope: str
    device_token: str | None = None
    profile_id: uuid.UUID | None = None


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    plan: str
    created_at: datetime


class ProfileIn(Input):
    name: Name
    is_kids: bool = False
    max_maturity: int | None = Field(default=None, ge=0, le=ADULT_LEVEL)
    pin: Pin | None = None
    language: Language = "en"
    avatar: Avatar = "red"


class ProfileUpdate(Input):
    name: Name | None = None
    password: str | None = Field(
        default=None, max_length=256, description="Required to set, change or remove a PIN."
    )
    max_maturity: int | None = Field(default=None, ge=0, le=ADULT_LEVEL)
    pin: Pin | None = None
    remove_pin: bool = False
    language: Language | None = None
    avatar: Avatar | None = None


class ProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    is_kids: bool
    max_maturity: int
    has_pin: bool
    language: str
    avatar: str
    created_at: datetime


class SelectProfileIn(Input):
    pin: Pin | None = None
    password: str | None = Field(
        default=None,
        max_length=256,
        description="Required to leave a kids profile for an unlocked adult profile.",
    )


MAX_PICKED_GENRES = 10
MAX_PICKED_TITLES = 20
# The catalog's genre slug: casefolded letters and digits of any script, joined by single
# hyphens ("science-fiction", "драма"), at most as wide as catalog_genres.slug.
GENRE_SLUG = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
GenreSlug = Annotated[str, StringConstraints(min_length=1, max_length=60)]


class PicksIn(Input):
    """A profile's onboarding picks. Repeats are dropped, keeping the first place."""

    genres: list[GenreSlug] = Field(
        default_factory=list,
        max_length=MAX_PICKED_GENRES,
        description="Catalog genre slugs, most liked first.",
    )
    titles: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_PICKED_TITLES,
        description="Catalog title ids, most liked first.",
    )

    @field_validator("genres")
    @classmethod
    def _slugs(cls, value: list[str]) -> list[str]:
        for slug in value:
            if not GENRE_SLUG.fullmatch(slug) or slug != slug.casefold():
                raise ValueError(f"{slug[:60]!r} is not a genre slug (lowercase, like 'sci-fi')")
        return list(dict.fromkeys(value))

    @field_validator("titles")
    @classmethod
    def _unique(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        return list(dict.fromkeys(value))


class PicksOut(BaseModel):
    profile_id: uuid.UUID
    genres: list[str]
    titles: list[uuid.UUID]


class RoleIn(Input):
    role: Role


class KeyRotationOut(BaseModel):
    kid: str
    signs_from: datetime
