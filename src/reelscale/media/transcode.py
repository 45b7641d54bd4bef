"""ffmpeg command lines for the ladder, poster and trickplay, and running them with progress.

Each rung is HLS with fMP4 (CMAF) segments: H.264 High + AAC-LC stereo, a keyframe every
2 s on every rung (forced by time, scene cuts off) so rungs switch cleanly at any segment
boundary, and 4 s segments. Several rungs encode in one ffmpeg process that decodes the
source once and splits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from reelscale.media.ffmpeg import ffmpeg_exe
from reelscale.media.ladder import AUDIO_KBPS, KEYFRAME_INTERVAL_S, SEGMENT_S, PlannedRung

Progress = Callable[[float], Awaitable[None]]  # fraction of this command done, 0..1

TRICKPLAY_INTERVAL_S = 5
TRICKPLAY_WIDTH = 160
TRICKPLAY_GRID = 10  # 10x10 thumbnails per sprite sheet


class TranscodeError(Exception):
    """ffmpeg failed; the message carries the tail of its log."""


def ladder_command(
    source: Path,
    rungs: list[PlannedRung],
    out_dir: Path,
    *,
    fps: float,
    has_audio: bool,
    preset: str = "veryfast",
    threads: int = 0,
) -> list[str]:
    """One ffmpeg invocation encoding `rungs` into out_dir/<rung>/index.m3u8."""
    gop = max(1, round(fps * KEYFRAME_INTERVAL_S))
    scales = "".join(
        f"[v{i}]scale={r.width}:{r.height}:flags=bicubic[o{i}];" for i, r in enumerate(rungs)
    )
    split = f"[0:v]split={len(rungs)}" + "".join(f"[v{i}]" for i in range(len(rungs)))
    argv = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-v",
        "error",
        "-progress",
        "pipe:1",
        "-nostats",
        "-i",
        str(source),
        "-filter_complex",
        f"{split};{scales.rstrip(';')}",
    ]
    for i, rung in enumerate(rungs):
        target = out_dir / rung.name
        argv += ["-map", f"[o{i}]"]
        if has_audio:
            argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2"]
        argv += [
            "-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p",
            "-profile:v", "high", "-level:v", rung.rung.level,
            "-b:v", f"{rung.rung.video_kbps}k", "-maxrate", f"{rung.rung.max_kbps}k",
            "-bufsize", f"{2 * rung.rung.max_kbps}k",
            # A fixed GOP with scene cuts off puts a keyframe every 2 s on every rung, at the
            # same frames, so rungs switch cleanly. (-force_key_frames would do it for
            # variable frame rates too, but serialises x264 and costs ~25% speed here.)
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-threads", str(threads),
            "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
            "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
            "-hls_segment_filename", str(target / "seg_%05d.m4s"),
            str(target / "index.m3u8"),
        ]  # fmt: skip
    return argv


PassDone = Callable[[list[PlannedRung], Path], Awaitable[None]]


async def encode_ladder(
    source: Path,
    *,
    lowest: PlannedRung | None,
    rest: list[PlannedRung],
    out_dir: Path,
    fps: float,
    has_audio: bool,
    duration_s: float,
    preset: str = "veryfast",
    on_pass_done: PassDone | None = None,
    on_progress: Progress | None = None,
) -> None:
    """Encode the ladder in two ffmpeg passes side by side: the lowest rung alone, and the
    rest in one pass that decodes the source once. The light first pass ends long before
    the other, so its rung can be published while the rest still encodes."""
    fractions = {"lowest": 0.0 if lowest else 1.0, "rest": 0.0 if rest else 1.0}

    def tracker(part: str) -> Progress:
        async def progress(fraction: float) -> None:
            fractions[part] = fraction
            if on_progress is not None:
                # The rest of the ladder is most of the work.
                weight = 0.15 if lowest and rest else (1.0 if part == "lowest" else 0.0)
                await on_progress(weight * fractions["lowest"] + (1 - weight) * fractions["rest"])

        return progress

    async def one_pass(rungs: list[PlannedRung], name: str) -> None:
        target = out_dir / name
        for rung in rungs:
            (target / rung.name).mkdir(parents=True, exist_ok=True)
        argv = ladder_command(source, rungs, target, fps=fps, has_audio=has_audio, preset=preset)
        await run_ffmpeg(argv, duration_s=duration_s, on_progress=tracker(name))
        if on_pass_done is not None:
            await on_pass_done(rungs, target)

    async with asyncio.TaskGroup() as group:  # one pass failing cancels the other
        if lowest is not None:
            group.create_task(one_pass([lowest], "lowest"))
        if rest:
            group.create_task(one_pass(rest, "rest"))


def poster_command(source: Path, out: Path, *, at_s: float) -> list[str]:
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
        "-ss", f"{at_s:.2f}", "-i", str(source), "-frames:v", "1",
        "-vf", "scale='min(1280,iw)':-2", "-q:v", "3", str(out),
    ]  # fmt: skip


def trickplay_command(source: Path, out_dir: Path) -> list[str]:
    """Sprite sheets of thumbnails every TRICKPLAY_INTERVAL_S, for scrubbing previews."""
    grid = f"{TRICKPLAY_GRID}x{TRICKPLAY_GRID}"
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
        "-progress", "pipe:1", "-nostats", "-i", str(source),
        "-vf", f"fps=1/{TRICKPLAY_INTERVAL_S},scale={TRICKPLAY_WIDTH}:-2,tile={grid}",
        "-q:v", "5", str(out_dir / "sprite_%03d.jpg"),
    ]  # fmt: skip


def thumbnails_vtt(*, duration_s: float, thumb_width: int, thumb_height: int) -> str:
    """WebVTT mapping each interval to its tile in the sprite sheets (`#xywh=`)."""
    lines = ["WEBVTT", ""]
    per_sheet = TRICKPLAY_GRID * TRICKPLAY_GRID
    count = max(
        1, int(duration_s // TRICKPLAY_INTERVAL_S) + (duration_s % TRICKPLAY_INTERVAL_S > 0)
    )
    for n in range(count):
        start, end = n * TRICKPLAY_INTERVAL_S, min(duration_s, (n + 1) * TRICKPLAY_INTERVAL_S)
        sheet, cell = divmod(n, per_sheet)
        row, col = divmod(cell, TRICKPLAY_GRID)
        lines += [
            f"{_vtt_time(start)} --> {_vtt_time(end)}",
            f"sprite_{sheet + 1:03d}.jpg#xywh={col * thumb_width},{row * thumb_height},"
            f"{thumb_width},{thumb_height}",
            "",
        ]
    return "\n".join(lines)


def _vtt_time(seconds: float) -> str:
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{millis:03d}"


async def run_ffmpeg(argv: list[str], *, duration_s: float, on_progress: Progress | None) -> None:
    """Run ffmpeg, reporting progress from its `-progress` stream; raise on failure."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr_task = asyncio.ensure_future(process.stderr.read())
    try:
        async for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("out_time_us=") and on_progress is not None and duration_s > 0:
                with contextlib.suppress(ValueError):
                    done = int(line.split("=", 1)[1]) / 1e6
                    await on_progress(min(1.0, max(0.0, done / duration_s)))
        code = await process.wait()
    except BaseException:
        # Cancelled (shutdown) or failed: never leave an orphan encoder running.
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    finally:
        stderr = (await stderr_task).decode(errors="replace")
    if code != 0:
        raise TranscodeError(f"ffmpeg exited with {code}: {stderr[-800:]}")
    if on_progress is not None:
        await on_progress(1.0)


@dataclass(frozen=True)
class RenditionStats:
    bandwidth: int  # peak bits/s over any one segment, as HLS BANDWIDTH requires
    average_bandwidth: int


_EXTINF = re.compile(r"#EXTINF:([\d.]+),\s*\n([^\n#]+)")


def rendition_stats(rung_dir: Path) -> RenditionStats:
    """Measure what the encoder actually produced, from the segments on disk."""
    playlist = (rung_dir / "index.m3u8").read_text()
    init = (rung_dir / "init.mp4").stat().st_size
    peak, total_bits, total_s = 0.0, 0.0, 0.0
    for duration, name in _EXTINF.findall(playlist):
        seconds = float(duration)
        bits = ((rung_dir / name.strip()).stat().st_size + init) * 8
        if seconds > 0:
            peak = max(peak, bits / seconds)
        total_bits += bits
        total_s += seconds
    if total_s <= 0:
        raise TranscodeError(f"no segments were written for {rung_dir.name}")
    return RenditionStats(bandwidth=round(peak), average_bandwidth=round(total_bits / total_s))


@dataclass(frozen=True)
class VariantEntry:
    name: str
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float


def master_playlist(variants: list[VariantEntry]) -> str:
    """The multivariant playlist over the published renditions, lowest first."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in sorted(variants, key=lambda v: v.bandwidth):
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={v.bandwidth},AVERAGE-BANDWIDTH={v.average_bandwidth},"
            f'RESOLUTION={v.width}x{v.height},CODECS="{v.codecs}",FRAME-RATE={v.frame_rate:.3f},'
            f'NAME="{v.name}"'
        )
        lines.append(f"{v.name}/index.m3u8")
    return "\n".join(lines) + "\n"
