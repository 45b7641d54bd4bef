"""The ffmpeg binary: the static build the imageio-ffmpeg wheel ships (x264 included)."""

from __future__ import annotations

import functools


@functools.cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())
