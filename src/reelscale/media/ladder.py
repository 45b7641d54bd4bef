"""The adaptive-bitrate ladder, after Apple's HLS authoring specification.

Rungs run from the source's height down; a rung taller or wider than the source is left
out (never upscale). Widths keep the source's aspect ratio, rounded to even numbers as
H.264 requires.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LadderRung:
    name: str
    height: int
    video_kbps: int
    max_kbps: int
    level: str  # H.264 level, which the CODECS attribute must state

    def width_for(self, source_width: int, source_height: int) -> int:
        return max(2, round(self.height * source_width / source_height / 2) * 2)


# Apple HLS authoring table (16:9 rows), 30 fps H.264 targets.
APPLE_LADDER = (
    LadderRung("234p", 234, 145, 250, "3.0"),
    LadderRung("360p", 360, 730, 1100, "3.0"),
    LadderRung("540p", 540, 2000, 3000, "3.1"),
    LadderRung("720p", 720, 3000, 4500, "3.1"),
    LadderRung("1080p", 1080, 6000, 7800, "4.0"),
)
AUDIO_KBPS = 128
KEYFRAME_INTERVAL_S = 2
SEGMENT_S = 4

_LEVEL_IDC = {"3.0": 30, "3.1": 31, "4.0": 40, "4.1": 41}


@dataclass(frozen=True)
class PlannedRung:
    rung: LadderRung
    width: int
    height: int

    @property
    def name(self) -> str:
        return self.rung.name

    @property
    def codecs(self) -> str:
        """RFC 6381 codec string: H.264 High profile at the rung's level, AAC-LC."""
        return f"avc1.6400{_LEVEL_IDC[self.rung.level]:02x},mp4a.40.2"


def plan_ladder(source_width: int, source_height: int) -> list[PlannedRung]:
    """The rungs to encode for a source, lowest first."""
    planned = []
    for rung in APPLE_LADDER:
        width = rung.width_for(source_width, source_height)
        if rung.height <= source_height and width <= source_width:
            planned.append(PlannedRung(rung, width, rung.height))
    if not planned:  # smaller than the lowest rung: one rung at the source's own size
        rung = APPLE_LADDER[0]
        even_w, even_h = source_width // 2 * 2, source_height // 2 * 2
        planned.append(
            PlannedRung(
                LadderRung(f"{even_h}p", even_h, rung.video_kbps, rung.max_kbps, rung.level),
                even_w,
                even_h,
            )
        )
    return planned
