"""What recs needs from other services, as small protocols, and plain records that fit them.

Recs imports no other service. The catalog and playback publish what it reads through their
client modules; the app wires those clients in. Every protocol is structural, so a
client's own pydantic models satisfy it when their field names match.

    CatalogSnapshot  every title with its features and availability window
    SignalSource     per-profile interactions: plays, position, watched, thumbs
    ProfileSource    per-profile language and onboarding picks (optional)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class TitleFacts(Protocol):
    """One title as recs sees it. Ids are the catalog's ids, as strings or UUIDs."""

    @property
    def id(self) -> object: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def genres(self) -> Sequence[str]: ...
    @property
    def cast(self) -> Sequence[str]: ...
    @property
    def original_language(self) -> str: ...
    @property
    def maturity_level(self) -> int: ...
    @property
    def release_year(self) -> int | None: ...
    @property
    def popularity(self) -> float: ...
    @property
    def runtime_minutes(self) -> int | None: ...
    @property
    def available_from(self) -> datetime | None: ...
    @property
    def available_until(self) -> datetime | None: ...


class SignalFacts(Protocol):
    """What one profile did with one title (a playback Progress row, plus counts)."""

    @property
    def profile_id(self) -> object: ...
    @property
    def title_id(self) -> object: ...
    @property
    def position_s(self) -> float: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def watched(self) -> bool: ...
    @property
    def plays(self) -> int: ...
    @property
    def thumb(self) -> int: ...  # -1 down, 0 none, +1 up
    @property
    def device(self) -> str | None: ...  # of the latest play; None when unknown
    @property
    def updated_at(self) -> datetime: ...  # the latest activity: hour and weekday come from it


class ProfileFacts(Protocol):
    @property
    def id(self) -> object: ...
    @property
    def language(self) -> str: ...
    @property
    def picked_genres(self) -> Sequence[str]: ...
    @property
    def picked_titles(self) -> Sequence[object]: ...


class CatalogSnapshot(Protocol):
    async def recs_titles(self) -> Sequence[TitleFacts]:
        """Every title, available now or not (recs filters by window at request time)."""


class SignalSource(Protocol):
    async def recs_signals(self) -> Sequence[SignalFacts]:
        """Every (profile, title) interaction the platform holds."""


class ProfileSource(Protocol):
    async def recs_profiles(self) -> Sequence[ProfileFacts]:
        """Every profile's language and onboarding picks."""


@dataclass(frozen=True)
class TitleRecord:
    id: str
    name: str
    kind: str = "movie"
    genres: tuple[str, ...] = ()
    cast: tuple[str, ...] = ()
    original_language: str = "en"
    maturity_level: int = 0
    release_year: int | None = None
    popularity: float = 0.0
    runtime_minutes: int | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None


@dataclass(frozen=True)
class SignalRecord:
    profile_id: str
    title_id: str
    position_s: float
    duration_s: float
    updated_at: datetime
    watched: bool = False
    plays: int = 1
    thumb: int = 0
    device: str | None = None


@dataclass(frozen=True)
class ProfileRecord:
    id: str
    language: str = "en"
    picked_genres: tuple[str, ...] = ()
    picked_titles: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformSources:
    """Where a build reads the platform from: the same three sources the server uses."""

    catalog: CatalogSnapshot
    signals: SignalSource
    profiles: ProfileSource | None = None


@dataclass
class StaticSources:
    """Fixed lists behind all three protocols: for tests, benches and offline builds."""

    titles: list[TitleRecord] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    profiles: list[ProfileRecord] = field(default_factory=list)

    async def recs_titles(self) -> Sequence[TitleFacts]:
        return list(self.titles)

    async def recs_signals(self) -> Sequence[SignalFacts]:
        return list(self.signals)

    async def recs_profiles(self) -> Sequence[ProfileFacts]:
        return list(self.profiles)
