"""Probing a source file with the bundled ffmpeg: is it a video we can transcode?

imageio-ffmpeg ships ffmpeg but not ffprobe, so the probe reads the stream summary ffmpeg
prints for its input, then decodes the last seconds to catch files cut short.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from reelscale.core.errors import Unprocessable
from reelscale.media.ffmpeg import ffmpeg_exe

MAX_DIMENSION = 8192
MIN_DIMENSION = 16
MAX_DURATION_S = 6 * 3600

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"(\d+(?:\.\d+)?) (?:fps|tbr)")
_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)")


class BadMedia(Unprocessable):
    """A file that is not a video we can use; the detail says why."""


@dataclass(frozen=True)
class ProbeResult:
    duration_s: float
    width: int
    height: int
    fps: float
    video_codec: str
    has_audio: bool
    size_bytes: int


async def probe(path: Path) -> ProbeResult:
    size = (await asyncio.to_thread(path.stat)).st_size
    if size == 0:
        raise BadMedia("the file is empty")
    header = await _run(ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path))
    video = _VIDEO.search(header)
    if video is None:
        if "Invalid data found" in header or "moov atom not found" in header:
            raise BadMedia("the file is not a readable video (damaged or truncated)")
        raise BadMedia("the file has no video stream")
    duration = _DURATION.search(header)
    if duration is None:
        raise BadMedia("the video's duration cannot be read")
    hours, minutes, seconds = duration.groups()
    duration_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    width, height = int(video.group(2)), int(video.group(3))
    if not (MIN_DIMENSION <= width <= MAX_DIMENSION and MIN_DIMENSION <= height <= MAX_DIMENSION):
        raise BadMedia(f"a resolution of {width}x{height} is outside what we transcode")
    if not 0.5 <= duration_s <= MAX_DURATION_S:
        raise BadMedia(f"a duration of {duration_s:.1f} s is outside what we transcode")
    line = header[video.start() : header.find("\n", video.start())]
    fps_match = _FPS.search(line)
    fps = float(fps_match.group(1)) if fps_match else 25.0
    if not 1 <= fps <= 240:
        raise BadMedia(f"a frame rate of {fps} is outside what we transcode")
    # A file cut short (an interrupted copy) often still opens: decode its end to be sure.
    tail = await _run(
        ffmpeg_exe(),
        "-v",
        "error",
        "-nostdin",
        "-sseof",
        "-3",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-f",
        "null",
        "-",
    )
    if tail.strip():
        raise BadMedia("the video is truncated or damaged near its end")
    return ProbeResult(
        duration_s=duration_s,
        width=width,
        height=height,
        fps=fps,
        video_codec=video.group(1),
        has_audio=_AUDIO.search(header) is not None,
        size_bytes=size,
    )


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BadMedia("probing the file took too long") from None
    return stderr.decode(errors="replace")
