"""Roles and the narrow scopes each one grants (least privilege)."""

from __future__ import annotations

from enum import StrEnum

from reelscale.core.identity import Scope


class Role(StrEnum):
    MEMBER = "member"
    EDITOR = "editor"
    ADMIN = "admin"
    SERVICE = "service"


_VIEWER = {
    Scope.ACCOUNT_READ,
    Scope.ACCOUNT_WRITE,
    Scope.PROFILES_READ,
    Scope.PROFILES_WRITE,
    Scope.CATALOG_READ,
    Scope.PLAYBACK_PLAY,
    Scope.HISTORY_READ,
    Scope.HISTORY_WRITE,
}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.MEMBER: frozenset(_VIEWER),
    Role.EDITOR: frozenset(_VIEWER | {Scope.CATALOG_WRITE, Scope.MEDIA_WRITE}),
    Role.ADMIN: frozenset(
        _VIEWER
        | {
            Scope.CATALOG_WRITE,
            Scope.MEDIA_WRITE,
            Scope.MEMBERS_ADMIN,
            Scope.KEYS_ADMIN,
            Scope.OPS_READ,
            Scope.OPS_WRITE,
        }
    ),
    # Machine callers read the catalog and write events; they never act as a viewer.
    Role.SERVICE: frozenset({Scope.CATALOG_READ, Scope.EVENTS_WRITE}),
}

# A kids profile's token cannot manage the account or its profiles.
KIDS_PROFILE_SCOPES = frozenset(
    {
        Scope.PROFILES_READ,
        Scope.CATALOG_READ,
        Scope.PLAYBACK_PLAY,
        Scope.HISTORY_READ,
        Scope.HISTORY_WRITE,
    }
)


def scopes_for(role: Role, *, kids_profile: bool = False) -> frozenset[Scope]:
    scopes = ROLE_SCOPES[role]
    return scopes & KIDS_PROFILE_SCOPES if kids_profile else scopes
