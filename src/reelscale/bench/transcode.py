"""`reelscale bench transcode`: our ladder encode against one plain ffmpeg command line.

Both sides encode the demo videos into the same ladder with the same encoder settings.
Ours runs the pipeline's two side-by-side passes (lowest rung alone, so a title is
playable early; the rest together); the peer is the single ffmpeg command a person would
write for the whole ladder. Poster, trickplay and publishing are not timed on either side.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

from reelscale.demo.videos import DEMO_VIDEOS
from reelscale.media.ladder import PlannedRung, plan_ladder
from reelscale.media.probe import ProbeResult, probe
from reelscale.media.synthetic import generate_clip
from reelscale.media.transcode import encode_ladder, ladder_command, run_ffmpeg


async def _ours(source: Path, probed: ProbeResult, rungs: list[PlannedRung], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    await encode_ladder(
        source,
        lowest=rungs[0],
        rest=rungs[1:],
        out_dir=out,
        fps=probed.fps,
        has_audio=probed.has_audio,
        duration_s=probed.duration_s,
    )
    return time.perf_counter() - started


async def _plain(source: Path, probed: ProbeResult, rungs: list[PlannedRung], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    for rung in rungs:
        (out / rung.name).mkdir(parents=True)
    argv = ladder_command(source, rungs, out, fps=probed.fps, has_audio=probed.has_audio)
    started = time.perf_counter()
    await run_ffmpeg(argv, duration_s=probed.duration_s, on_progress=None)
    return time.perf_counter() - started


async def run(work: Path, *, log: Any = print) -> dict[str, Any]:
    sources_dir = work / "sources"
    out = work / "out"
    ours_s = plain_s = media_s = 0.0
    for n, video in enumerate(DEMO_VIDEOS):
        source = sources_dir / f"{video.spec.look}-{video.spec.seconds}.mp4"
        if not source.exists():
            log(f"generating source {source.name}")
            await generate_clip(video.spec, source)
        probed = await probe(source)
        rungs = plan_ladder(probed.width, probed.height)
        # Alternate which side goes first, so warm caches favour neither.
        if n % 2 == 0:
            ours_t = await _ours(source, probed, rungs, out)
            plain_t = await _plain(source, probed, rungs, out)
        else:
            plain_t = await _plain(source, probed, rungs, out)
            ours_t = await _ours(source, probed, rungs, out)
        log(
            f"{source.name}: {probed.duration_s:.0f} s of {probed.width}x{probed.height}, "
            f"{len(rungs)} rungs: ours {ours_t:.1f} s, plain ffmpeg {plain_t:.1f} s"
        )
        ours_s += ours_t
        plain_s += plain_t
        media_s += probed.duration_s
    shutil.rmtree(out, ignore_errors=True)
    speed, plain_speed = media_s / ours_s, media_s / plain_s
    return {
        "speed_x_realtime": round(speed, 3),
        "plain_ffmpeg_speed_x_realtime": round(plain_speed, 3),
        "ratio": round(speed / plain_speed, 3),
        "media_seconds": round(media_s, 1),
        "videos": len(DEMO_VIDEOS),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
    }


def main(work: Path, log: Any = print) -> dict[str, Any]:
    return asyncio.run(run(work, log=log))
