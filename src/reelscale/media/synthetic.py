"""Real source videos generated with ffmpeg's test sources and tones.

The demo and the tests need videos we may redistribute and that look different from one
another; ffmpeg draws them from its built-in sources (test cards, fractals, cellular
automata, colour bars) with a tone or chord as the soundtrack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reelscale.media.ffmpeg import ffmpeg_exe
from reelscale.media.transcode import run_ffmpeg

LOOKS = {
    "testcard": "testsrc2=size={w}x{h}:rate={fps}",
    "fractal": "mandelbrot=size={w}x{h}:rate={fps}",
    "life": "life=size={w}x{h}:rate={fps}:mold=10:ratio=0.1:death_color=#1d1d2b:life_color=#e50914",
    "bars": "smptehdbars=size={w}x{h}:rate={fps}",
    "automaton": "cellauto=size={w}x{h}:rate={fps}:rule=110",
    "gradient": "gradients=size={w}x{h}:rate={fps}:speed=0.02",
}


@dataclass(frozen=True)
class ClipSpec:
    look: str
    seconds: float
    width: int = 1280
    height: int = 720
    fps: int = 30
    tone_hz: int = 440


def clip_command(spec: ClipSpec, out: Path) -> list[str]:
    video = LOOKS[spec.look].format(w=spec.width, h=spec.height, fps=spec.fps)
    if spec.look in ("automaton",):  # these render at their own size; scale to the spec
        video += f",scale={spec.width}:{spec.height}"
    audio = (
        f"sine=frequency={spec.tone_hz}:sample_rate=48000,"
        f"aformat=channel_layouts=stereo,volume=0.25"
    )
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
        "-progress", "pipe:1", "-nostats",
        "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
        "-t", f"{spec.seconds}", "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", "5M", "-maxrate", "6M", "-bufsize", "12M",
        "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(out),
    ]  # fmt: skip


async def generate_clip(spec: ClipSpec, out: Path, *, on_progress=None) -> Path:  # type: ignore[no-untyped-def]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.mp4")
    await run_ffmpeg(clip_command(spec, partial), duration_s=spec.seconds, on_progress=on_progress)
    partial.replace(out)  # a clip that exists is a whole clip
    return out
