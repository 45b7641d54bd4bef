"""One transcode job, start to finish, resumable at rung granularity.

Order of work, chosen so a title plays as early as possible and is never half-published:

1. poster image;
2. two ffmpeg passes side by side: the lowest rung alone, and every other rung in one
   pass that decodes the source once. The light first pass finishes long before the
   other and is published at once: the title is playable while the rest still encodes;
3. trickplay sprite sheets and their WebVTT index.

Publishing a rung copies its files into the blob store (segments first, playlist last),
then inserts its `Rendition` row, then rewrites the master playlist from the rows. A rung
without a row is invisible, so a crash anywhere leaves only invisible leftovers that the
next attempt overwrites. Rungs that already have a row are skipped on resume.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from reelscale.core.clock import Clock
from reelscale.core.db import Database
from reelscale.core.events import EventPublisher
from reelscale.media.blobs import BlobStore
from reelscale.media.ladder import PlannedRung, plan_ladder
from reelscale.media.models import Asset, Rendition
from reelscale.media.transcode import (
    TRICKPLAY_WIDTH,
    VariantEntry,
    encode_ladder,
    master_playlist,
    poster_command,
    rendition_stats,
    run_ffmpeg,
    thumbnails_vtt,
    trickplay_command,
)

Report = Callable[[str, float], Awaitable[None]]  # (stage, overall fraction 0..1)


@dataclass
class PipelineContext:
    db: Database
    blobs: BlobStore
    clock: Clock
    staging_root: Path
    preset: str = "veryfast"
    events: EventPublisher | None = None


def asset_prefix(asset_id: uuid.UUID) -> str:
    """Where an asset's published files live. The id is in the hex form signed URLs use,
    so nginx maps a URL straight onto this directory."""
    return f"assets/{asset_id.hex}"


async def run_job(
    ctx: PipelineContext, *, job_id: uuid.UUID, asset_id: uuid.UUID, report: Report
) -> None:
    """Transcode an asset; `report` hears the stage and overall progress."""
    stage_dir = ctx.staging_root / str(job_id)
    shutil.rmtree(stage_dir, ignore_errors=True)  # leftovers of an attempt that died
    stage_dir.mkdir(parents=True)
    try:
        async with ctx.db.session() as db_session:
            asset = await db_session.get(Asset, asset_id)
            if asset is None:
                raise LookupError(f"asset {asset_id} is gone")
            done = set(
                await db_session.scalars(
                    select(Rendition.name).where(Rendition.asset_id == asset_id)
                )
            )
        source = await _local_source(ctx, asset, stage_dir)
        rungs = plan_ladder(asset.width, asset.height)
        await _set_state(ctx, asset_id, "transcoding", only_from=("queued",))

        if asset.poster_key is None:
            await report("poster", 0.0)
            poster = stage_dir / "poster.jpg"
            await run_ffmpeg(
                poster_command(source, poster, at_s=min(asset.duration_s * 0.1, 30)),
                duration_s=0,
                on_progress=None,
            )
            key = f"{asset_prefix(asset_id)}/poster.jpg"
            await ctx.blobs.put_file(key, poster)
            await _update_asset(ctx, asset_id, poster_key=key)

        lowest, rest = rungs[0], [r for r in rungs[1:] if r.name not in done]
        stage = "encoding " + ", ".join(r.name for r in rungs if r.name not in done)

        async def progress(fraction: float) -> None:
            await report(stage, fraction)

        async def publish(encoded: list[PlannedRung], out: Path) -> None:
            for rung in encoded:
                await _publish_rung(ctx, asset, rung, out / rung.name)

        await encode_ladder(
            source,
            lowest=None if lowest.name in done else lowest,
            rest=rest,
            out_dir=stage_dir,
            fps=asset.fps,
            has_audio=asset.has_audio,
            duration_s=asset.duration_s,
            preset=ctx.preset,
            on_pass_done=publish,
            on_progress=progress,
        )
        if asset.thumbnails_key is None:
            await report("trickplay", 1.0)
            await _trickplay(ctx, asset, source, stage_dir)
        await _write_master(ctx, asset_id)  # also repairs one lost to a crash after a commit
        await _set_state(ctx, asset_id, "ready")
        await report("done", 1.0)
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)


async def _local_source(ctx: PipelineContext, asset: Asset, stage_dir: Path) -> Path:
    local = ctx.blobs.local_path(asset.source_key)
    if local is not None:
        return local
    target = stage_dir / ("source" + Path(asset.source_key).suffix)
    with target.open("wb") as out:
        async for chunk in ctx.blobs.stream(asset.source_key):
            out.write(chunk)
    return target


async def _trickplay(ctx: PipelineContext, asset: Asset, source: Path, stage_dir: Path) -> None:
    sprites = stage_dir / "trickplay"
    sprites.mkdir(exist_ok=True)
    await run_ffmpeg(
        trickplay_command(source, sprites), duration_s=asset.duration_s, on_progress=None
    )
    thumb_h = round(TRICKPLAY_WIDTH * asset.height / asset.width / 2) * 2
    prefix = f"{asset_prefix(asset.id)}/trickplay"
    for sheet in sorted(sprites.glob("sprite_*.jpg")):
        await ctx.blobs.put_file(f"{prefix}/{sheet.name}", sheet)
    vtt = thumbnails_vtt(
        duration_s=asset.duration_s, thumb_width=TRICKPLAY_WIDTH, thumb_height=thumb_h
    )
    await ctx.blobs.put_bytes(f"{prefix}/thumbnails.vtt", vtt.encode())
    await _update_asset(ctx, asset.id, thumbnails_key=f"{prefix}/thumbnails.vtt")


async def _publish_rung(
    ctx: PipelineContext, asset: Asset, rung: PlannedRung, rung_dir: Path
) -> None:
    stats = await asyncio.to_thread(rendition_stats, rung_dir)
    prefix = f"{asset_prefix(asset.id)}/{rung.name}"
    listing = await asyncio.to_thread(lambda: sorted(rung_dir.iterdir()))
    files = [p for p in listing if p.name != "index.m3u8"]
    for path in files:  # media first, the playlist that points at it last
        await ctx.blobs.put_file(f"{prefix}/{path.name}", path)
    await ctx.blobs.put_file(f"{prefix}/index.m3u8", rung_dir / "index.m3u8")
    codecs = rung.codecs if asset.has_audio else rung.codecs.split(",")[0]
    now = ctx.clock.now()
    async with ctx.db.transaction() as db_session:
        exists = await db_session.scalar(
            select(Rendition.id).where(Rendition.asset_id == asset.id, Rendition.name == rung.name)
        )
        if exists is None:
            db_session.add(
                Rendition(
                    asset_id=asset.id,
                    name=rung.name,
                    width=rung.width,
                    height=rung.height,
                    bandwidth=stats.bandwidth,
                    average_bandwidth=stats.average_bandwidth,
                    codecs=codecs,
                    frame_rate=asset.fps,
                    playlist_key=f"{prefix}/index.m3u8",
                    created_at=now,
                )
            )
    await _write_master(ctx, asset.id)
    # Playable only once a master playlist lists a rung.
    if await _set_state(ctx, asset.id, "playable", only_from=("queued", "transcoding")) and (
        ctx.events is not None
    ):
        await ctx.events.emit(
            source="reelscale/media",
            type="media.asset.playable",
            subject=str(asset.id),
            data={"title_id": str(asset.title_id), "renditions": [rung.name]},
        )


async def _write_master(ctx: PipelineContext, asset_id: uuid.UUID) -> None:
    """Rewrite the master playlist from the published rows (atomic in the blob store)."""
    async with ctx.db.session() as db_session:
        renditions = list(
            await db_session.scalars(select(Rendition).where(Rendition.asset_id == asset_id))
        )
    if not renditions:
        return
    variants = [
        VariantEntry(
            r.name, r.width, r.height, r.bandwidth, r.average_bandwidth, r.codecs, r.frame_rate
        )
        for r in renditions
    ]
    await ctx.blobs.put_bytes(
        f"{asset_prefix(asset_id)}/master.m3u8", master_playlist(variants).encode()
    )


async def _set_state(
    ctx: PipelineContext, asset_id: uuid.UUID, state: str, only_from: tuple[str, ...] | None = None
) -> bool:
    """Move the asset to `state`; True if it moved."""
    async with ctx.db.transaction() as db_session:
        asset = await db_session.get(Asset, asset_id)
        if asset is not None and (only_from is None or asset.state in only_from):
            asset.state = state
            asset.updated_at = ctx.clock.now()
            return True
    return False


async def _update_asset(ctx: PipelineContext, asset_id: uuid.UUID, **fields: str) -> None:
    async with ctx.db.transaction() as db_session:
        asset = await db_session.get(Asset, asset_id)
        if asset is not None:
            for name, value in fields.items():
                setattr(asset, name, value)
            asset.updated_at = ctx.clock.now()
