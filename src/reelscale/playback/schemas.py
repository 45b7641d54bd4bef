"""Playback request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from reelscale.core.types import Input


class PlayIn(Input):
    title_id: uuid.UUID
    device: str = Field(default="web", min_length=1, max_length=64, pattern=r"^[\w.-]+$")


class PlayOut(BaseModel):
    session_id: uuid.UUID
    title_id: uuid.UUID
    asset_id: uuid.UUID
    manifest_url: str
    media_prefix: str = Field(description="Signed path prefix every media file is fetched under.")
    expires_at: datetime
    resume_at_s: float
    duration_s: float
    heartbeat_interval_s: int
    poster_url: str | None
    thumbnails_url: str | None


Rendition = Annotated[str, Field(max_length=16, pattern=r"^[\w]+$")]
# What a player can report happened between two heartbeats (at most one interval: 60 s).
IntervalMs = Annotated[int, Field(ge=0, le=60_000)]


class QualitySwitch(Input):
    type: Literal["quality_switch"]
    from_rendition: Rendition | None = None
    to_rendition: Rendition


class Rebuffer(Input):
    type: Literal["rebuffer"]
    duration_ms: IntervalMs


class PlayerError(Input):
    type: Literal["error"]
    code: str = Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")
    fatal: bool = False
    before_first_frame: bool = False


PlayerEvent = Annotated[QualitySwitch | Rebuffer | PlayerError, Field(discriminator="type")]
MAX_PLAYER_EVENTS = 32  # per heartbeat; a player keeps the rest for the next one


class HeartbeatIn(Input):
    """Where the player is, and what happened since its last heartbeat."""

    position_s: float = Field(ge=0, le=24 * 3600)
    state: Literal["playing", "paused", "buffering", "seeking"] = "playing"
    rendition: Rendition | None = None
    watched_ms: IntervalMs = Field(default=0, description="Time spent playing since last beat.")
    rebuffer_ms: IntervalMs = Field(default=0, description="Time stalled since last beat.")
    events: list[PlayerEvent] = Field(default_factory=list, max_length=MAX_PLAYER_EVENTS)


class HeartbeatOut(BaseModel):
    media_prefix: str
    expires_at: datetime


class StopIn(Input):
    position_s: float = Field(ge=0, le=24 * 3600)
    events: list[PlayerEvent] = Field(default_factory=list, max_length=MAX_PLAYER_EVENTS)


class ThumbIn(Input):
    thumb: Literal[-1, 0, 1] = Field(description="1 thumbs up, -1 thumbs down, 0 clears.")


class ThumbOut(BaseModel):
    title_id: uuid.UUID
    thumb: int
    updated_at: datetime | None = Field(description="None when the profile gave no thumb.")


Surface = Literal["home", "browse", "search", "title", "player"]
RowName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]


class Impression(Input):
    type: Literal["impression"]
    surface: Surface
    row: RowName
    title_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


class Click(Input):
    type: Literal["click"]
    surface: Surface
    row: RowName | None = None
    title_id: uuid.UUID
    rank: int | None = Field(default=None, ge=0, le=10_000)


class Search(Input):
    type: Literal["search"]
    query_chars: int = Field(ge=0, le=200)
    results: int = Field(ge=0, le=10_000)


BrowseEvent = Annotated[Impression | Click | Search, Field(discriminator="type")]


class BrowseBatchIn(Input):
    """What a member looked at and clicked, sent by the UI in small batches."""

    events: list[BrowseEvent] = Field(min_length=1, max_length=50)


class AcceptedOut(BaseModel):
    accepted: int


class ProgressOut(BaseModel):
    title_id: uuid.UUID
    position_s: float
    duration_s: float
    fraction: float
    watched: bool
    updated_at: datetime
