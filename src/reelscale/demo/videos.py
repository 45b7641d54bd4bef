"""Demo videos: a handful of short real videos, generated once and transcoded with progress.

Each is drawn by ffmpeg from a different test source with its own tone, attached to a
demo title of a fitting genre (a kids title among them, so the kids profile has something
to watch). Later runs find the assets already published and reuse them.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import select

from reelscale.core.maturity import KIDS_DEFAULT_LEVEL, level_of
from reelscale.demo.seed import demo_id, generate_titles
from reelscale.media import service as media_service
from reelscale.media.models import Asset, Job
from reelscale.media.probe import probe
from reelscale.media.synthetic import ClipSpec, generate_clip


@dataclass(frozen=True)
class DemoVideo:
    genre: str
    spec: ClipSpec


DEMO_VIDEOS = (
    DemoVideo("Kids", ClipSpec("life", 40, tone_hz=523)),
    DemoVideo("Documentary", ClipSpec("testcard", 45, tone_hz=440)),
    DemoVideo("Science Fiction", ClipSpec("fractal", 30, tone_hz=330)),
    DemoVideo("Drama", ClipSpec("gradient", 40, tone_hz=392)),
    DemoVideo("Thriller", ClipSpec("automaton", 35, tone_hz=294)),
)


def demo_video_titles() -> list[tuple[uuid.UUID, str, DemoVideo]]:
    """(title id, title name, video) for each demo video: the first available demo title
    of the video's genre (for kids, one a kids profile may watch)."""
    chosen = []
    titles = list(enumerate(generate_titles()))
    for video in DEMO_VIDEOS:
        for n, title in titles:
            fits = title.genres[0] == video.genre and title.available_from is None
            if video.genre == "Kids":
                fits = fits and level_of(title.maturity_rating) <= KIDS_DEFAULT_LEVEL
            if fits and title.kind == "movie":
                chosen.append((demo_id("title", n), title.name, video))
                break
    return chosen


async def seed_videos(app: Any, console: Console | None) -> int:
    """Generate and transcode the demo videos that are not yet published; returns how many."""
    platform = app.state.platform
    media = app.state.media
    wanted = []
    async with platform.db.session() as db_session:
        for title_id, name, video in demo_video_titles():
            asset = await db_session.scalar(select(Asset).where(Asset.title_id == title_id))
            if asset is None or asset.state == "failed":
                wanted.append((title_id, name, video))
    if not wanted:
        return 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=console is None) as bar:
        jobs: list[tuple[TaskID, uuid.UUID]] = []
        for title_id, name, video in wanted:
            task = bar.add_task(f"Generating  {name}", total=1.0)

            async def advance(fraction: float, task: TaskID = task) -> None:
                bar.update(task, completed=fraction)

            staging = media.staging / "demo" / f"{video.spec.look}.mp4"
            clip = await generate_clip(video.spec, staging, on_progress=advance)
            probed = await probe(clip)
            _, job = await media_service.ingest(
                db=platform.db,
                blobs=media.blobs,
                title_id=title_id,
                source=clip,
                suffix=".mp4",
                probed=probed,
                now=platform.clock.now(),
            )
            media.job_queued()
            bar.update(task, description=f"Transcoding {name}", completed=0)
            jobs.append((task, job.id))
        await _follow(platform, bar, jobs)
    return len(wanted)


async def _follow(platform: Any, bar: Progress, jobs: list[tuple[TaskID, uuid.UUID]]) -> None:
    """Mirror the durable jobs' progress into the bars until all are done."""
    pending = dict(jobs)
    while pending:
        async with platform.db.session() as db_session:
            rows = await db_session.scalars(select(Job).where(Job.id.in_(pending.values())))
            for job in rows:
                task = next(t for t, j in pending.items() if j == job.id)
                bar.update(task, completed=job.progress)
                if job.state in ("done", "failed"):
                    if job.state == "failed":
                        bar.update(task, description=f"[red]Failed: {job.error}")
                    del pending[task]
        await asyncio.sleep(0.5)
