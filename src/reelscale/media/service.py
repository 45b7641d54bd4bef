"""Media logic: resumable uploads, ingesting a probed source, and asset queries.

An upload's bytes go to a staging file and are streamed, never held in memory. Each
chunk names the offset it starts at; a chunk at the wrong offset is refused (409) with
the right one, so a client that lost a response simply asks and resumes. The staging file
is cut back to the recorded offset before every append, so bytes from a chunk that was
interrupted, or lost a race, never survive.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reelscale.core.db import Database
from reelscale.core.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable
from reelscale.media import jobs
from reelscale.media.blobs import BlobStore
from reelscale.media.models import Asset, Job, Rendition, Upload
from reelscale.media.probe import BadMedia, ProbeResult, probe
from reelscale.media.schemas import AssetOut, JobOut, RenditionOut, UploadIn

UPLOAD_TTL = timedelta(days=2)
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".mxf", ".mpg"}


def _suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise Unprocessable(
            f"{suffix or 'no extension'} is not a video file type we accept: "
            f"{', '.join(sorted(VIDEO_SUFFIXES))}"
        )
    return suffix


async def create_upload(
    *, db_session: AsyncSession, data: UploadIn, created_by: str, now: datetime
) -> Upload:
    _suffix(data.filename)
    upload = Upload(
        id=uuid.uuid4(),
        title_id=data.title_id,
        filename=data.filename,
        size=data.size,
        received=0,
        state="receiving",
        created_by=created_by[:64],
        created_at=now,
        expires_at=now + UPLOAD_TTL,
    )
    db_session.add(upload)
    await db_session.flush()
    return upload


async def get_upload(*, db_session: AsyncSession, upload_id: uuid.UUID) -> Upload:
    upload = await db_session.get(Upload, upload_id)
    if upload is None:
        raise NotFound("no such upload")
    return upload


def staging_file(staging: Path, upload_id: uuid.UUID) -> Path:
    return staging / "uploads" / f"{upload_id}.part"


async def append_chunk(
    *,
    db: Database,
    upload_id: uuid.UUID,
    offset: int,
    body: AsyncIterator[bytes],
    staging: Path,
    max_chunk: int,
    now: datetime,
) -> Upload:
    """Write one chunk at `offset`; refuse a wrong offset, an expired or finished upload."""
    async with db.session() as db_session:
        upload = await get_upload(db_session=db_session, upload_id=upload_id)
    if upload.state != "receiving":
        raise Conflict(f"this upload is {upload.state}", upload_offset=upload.received)
    if upload.expires_at <= now:
        raise Conflict("this upload has expired; start a new one")
    if offset != upload.received:
        raise Conflict(
            f"the next chunk starts at offset {upload.received}", upload_offset=upload.received
        )
    path = staging_file(staging, upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    room = min(max_chunk, upload.size - offset)
    written = await _write_at(path, offset, body, room)
    async with db.transaction() as db_session:
        moved = await db_session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.received == offset, Upload.state == "receiving")
            .values(received=offset + written)
        )
        if getattr(moved, "rowcount", 0) != 1:
            raise Conflict("another chunk for this upload arrived first; ask for the offset")
        return await get_upload(db_session=db_session, upload_id=upload_id)


async def _write_at(path: Path, offset: int, body: AsyncIterator[bytes], room: int) -> int:
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT, 0o600)
    written = 0
    try:
        await asyncio.to_thread(os.ftruncate, fd, offset)
        await asyncio.to_thread(os.lseek, fd, offset, os.SEEK_SET)
        async for piece in body:
            if written + len(piece) > room:
                raise PayloadTooLarge(
                    f"this chunk goes past the end of the file or the {room}-byte chunk limit"
                )
            await asyncio.to_thread(os.write, fd, piece)
            written += len(piece)
        await asyncio.to_thread(os.fsync, fd)  # acknowledged bytes survive a crash
    finally:
        os.close(fd)
    return written


async def complete_upload(
    *,
    db: Database,
    blobs: BlobStore,
    upload_id: uuid.UUID,
    staging: Path,
    now: datetime,
) -> Upload:
    """Probe a fully received upload and ingest it, or reject it with the reason."""
    path = staging_file(staging, upload_id)
    async with db.session() as db_session:
        upload = await get_upload(db_session=db_session, upload_id=upload_id)
    try:
        probed = await probe(path)
    except BadMedia as exc:
        async with db.transaction() as db_session:
            row = await get_upload(db_session=db_session, upload_id=upload_id)
            row.state, row.error = "rejected", exc.detail
        path.unlink(missing_ok=True)
        raise
    await ingest(
        db=db,
        blobs=blobs,
        title_id=upload.title_id,
        source=path,
        suffix=_suffix(upload.filename),
        probed=probed,
        now=now,
        upload_id=upload_id,
    )
    path.unlink(missing_ok=True)
    async with db.session() as db_session:
        return await get_upload(db_session=db_session, upload_id=upload_id)


async def ingest(
    *,
    db: Database,
    blobs: BlobStore,
    title_id: uuid.UUID,
    source: Path,
    suffix: str,
    probed: ProbeResult,
    now: datetime,
    upload_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
) -> tuple[Asset, Job]:
    """Store the source (moved, not copied, when it is on the same disk) and create its
    asset and transcode job, together or not at all."""
    asset_id = asset_id or uuid.uuid4()
    key = f"sources/{asset_id}/source{suffix}"
    await blobs.move_file(key, source)
    async with db.transaction() as db_session:
        asset = Asset(
            id=asset_id,
            title_id=title_id,
            state="queued",
            source_key=key,
            duration_s=probed.duration_s,
            width=probed.width,
            height=probed.height,
            fps=probed.fps,
            has_audio=probed.has_audio,
            created_at=now,
            updated_at=now,
        )
        db_session.add(asset)
        await db_session.flush()
        job = await jobs.enqueue(db_session=db_session, asset_id=asset_id, now=now)
        if upload_id is not None:
            await db_session.execute(
                update(Upload).where(Upload.id == upload_id).values(state="done", asset_id=asset_id)
            )
    return asset, job


async def get_job(*, db_session: AsyncSession, job_id: uuid.UUID) -> Job:
    job = await db_session.get(Job, job_id)
    if job is None:
        raise NotFound("no such job")
    return job


async def list_assets(*, db_session: AsyncSession, title_id: uuid.UUID) -> list[AssetOut]:
    assets = list(
        await db_session.scalars(
            select(Asset).where(Asset.title_id == title_id).order_by(Asset.created_at)
        )
    )
    out = []
    for asset in assets:
        renditions = await db_session.scalars(
            select(Rendition).where(Rendition.asset_id == asset.id).order_by(Rendition.height)
        )
        asset_jobs = await db_session.scalars(
            select(Job).where(Job.asset_id == asset.id).order_by(Job.created_at)
        )
        out.append(
            AssetOut(
                id=asset.id,
                title_id=asset.title_id,
                state=asset.state,
                duration_s=asset.duration_s,
                width=asset.width,
                height=asset.height,
                has_audio=asset.has_audio,
                renditions=[RenditionOut.model_validate(r) for r in renditions],
                jobs=[JobOut.model_validate(j) for j in asset_jobs],
                created_at=asset.created_at,
            )
        )
    return out


async def playable_asset(*, db_session: AsyncSession, title_id: uuid.UUID) -> Asset | None:
    """The newest asset of a title that has at least one published rung."""
    asset: Asset | None = await db_session.scalar(
        select(Asset)
        .where(Asset.title_id == title_id, Asset.state.in_(("playable", "ready")))
        .order_by(Asset.created_at.desc())
        .limit(1)
    )
    return asset


async def playable_titles(*, db_session: AsyncSession) -> list[Asset]:
    rows = await db_session.scalars(
        select(Asset).where(Asset.state.in_(("playable", "ready"))).order_by(Asset.created_at)
    )
    newest: dict[uuid.UUID, Asset] = {}
    for asset in rows:
        newest[asset.title_id] = asset
    return list(newest.values())
