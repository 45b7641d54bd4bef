"""What other services may ask of playback: per-profile viewing signals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel


class SignalRow(BaseModel):
    """What one profile did with one title: its progress row and how often it was played."""

    profile_id: uuid.UUID
    title_id: uuid.UUID
    position_s: float
    duration_s: float
    watched: bool
    plays: int
    thumb: int = 0  # -1 down, 0 none, +1 up
    device: str | None = None  # the device of the latest play, for context features
    updated_at: datetime  # the latest activity: the hour and weekday of viewing come from it


class Signals(Protocol):
    async def recs_signals(self) -> list[SignalRow]:
        """Every (profile, title) interaction."""
