"""Media request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from reelscale.core.types import Input

# A display name for the uploaded file; it never becomes a path on disk.
FileName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=3,
        max_length=200,
        pattern=r"^[\w][\w .,()'+\-]*\.[A-Za-z0-9]{2,5}$",
    ),
]
MAX_UPLOAD_BYTES = 50 * 1024**3


class UploadIn(Input):
    title_id: uuid.UUID
    filename: FileName
    size: int = Field(gt=0, le=MAX_UPLOAD_BYTES, description="Total bytes of the file.")


class UploadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title_id: uuid.UUID
    filename: str
    size: int
    received: int
    state: str
    asset_id: uuid.UUID | None
    error: str | None
    expires_at: datetime
    chunk_max_bytes: int = 0


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    asset_id: uuid.UUID
    state: str
    stage: str
    progress: float
    attempts: int
    error: str | None
    updated_at: datetime


class RenditionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str


class AssetOut(BaseModel):
    id: uuid.UUID
    title_id: uuid.UUID
    state: str
    duration_s: float
    width: int
    height: int
    has_audio: bool
    renditions: list[RenditionOut]
    jobs: list[JobOut]
    created_at: datetime


class PlayableOut(BaseModel):
    title_id: uuid.UUID
    asset_id: uuid.UUID
    duration_s: float
