"""Playback request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

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


class HeartbeatIn(Input):
    position_s: float = Field(ge=0, le=24 * 3600)
    state: Literal["playing", "paused", "buffering", "seeking"] = "playing"
    rendition: str | None = Field(default=None, max_length=16, pattern=r"^[\w]+$")


class HeartbeatOut(BaseModel):
    media_prefix: str
    expires_at: datetime


class StopIn(Input):
    position_s: float = Field(ge=0, le=24 * 3600)


class ProgressOut(BaseModel):
    title_id: uuid.UUID
    position_s: float
    duration_s: float
    fraction: float
    watched: bool
    updated_at: datetime
