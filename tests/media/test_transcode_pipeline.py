"""Upload to playable: a real clip through the real ffmpeg into an HLS/CMAF ladder."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reelscale.media.ffmpeg import ffmpeg_exe
from reelscale.media.ladder import plan_ladder
from tests.conftest import Harness
from tests.media.media_support import clip, new_title, upload, wait_for_asset
from tests.support import bearer, editor_token


def test_ladder_follows_apple_table_and_never_upscales() -> None:
    assert [r.name for r in plan_ladder(1920, 1080)] == ["234p", "360p", "540p", "720p", "1080p"]
    assert [(r.width, r.height) for r in plan_ladder(1280, 720)] == [
        (416, 234),
        (640, 360),
        (960, 540),
        (1280, 720),
    ]
    assert [r.name for r in plan_ladder(640, 360)] == ["234p", "360p"]
    small = plan_ladder(320, 180)
    assert [(r.width, r.height) for r in small] == [(320, 180)]
    # 4:3 keeps its shape rather than stretching to 16:9
    assert plan_ladder(960, 720)[0].width == 312
    assert plan_ladder(1280, 720)[-1].codecs == "avc1.64001f,mp4a.40.2"


def _keyframe_times(path: Path) -> list[float]:
    out = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-skip_frame",
            "nokey",
            "-i",
            str(path),
            "-vf",
            "showinfo",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return [float(t) for t in re.findall(r"pts_time:([\d.]+)", out)]


async def test_upload_transcode_publish(sqlite_harness: Harness) -> None:
    harness = sqlite_harness
    editor = await editor_token(harness.client, harness.app)
    title_id = await new_title(harness, editor)
    source = await clip(seconds=10, width=640, height=360)
    result = await upload(harness.client, editor, title_id, source, chunk=100_000)
    assert result["status"] == 200
    assert result["state"] == "done"
    asset = await wait_for_asset(harness, editor, title_id)
    assert [r["name"] for r in asset["renditions"]] == ["234p", "360p"]
    assert asset["jobs"][-1]["state"] == "done"
    assert asset["jobs"][-1]["progress"] == 1.0
    # Playable as soon as one rung was published (the light lowest-rung pass usually wins
    # the race), before the job finished.
    types = harness.event_types()
    assert types.index("media.asset.playable") < types.index("media.job.finished")
    playable = next(e for e in harness.events if e.type == "media.asset.playable")
    assert len(playable.data["renditions"]) == 1

    root = harness.app.state.media.blobs.local_path(f"assets/{asset['id'].replace('-', '')}")
    master = (root / "master.m3u8").read_text()
    for attribute in (
        "BANDWIDTH=",
        "AVERAGE-BANDWIDTH=",
        "RESOLUTION=416x234",
        "RESOLUTION=640x360",
        'CODECS="avc1.64001e,mp4a.40.2"',
    ):
        assert attribute in master
    playlist = (root / "360p" / "index.m3u8").read_text()
    assert '#EXT-X-MAP:URI="init.mp4"' in playlist
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", playlist)]
    assert all(3.9 <= d <= 6.0 for d in durations[:-1])  # 4-6 s segments
    assert abs(sum(durations) - 10) < 0.5
    assert (root / "poster.jpg").stat().st_size > 1000
    assert "WEBVTT" in (root / "trickplay" / "thumbnails.vtt").read_text()
    # Keyframes every 2 s on every rung, at the same times: rungs switch cleanly.
    times = {}
    for rung in ("234p", "360p"):
        joined = root / rung / "joined.mp4"
        parts = [root / rung / "init.mp4", *sorted((root / rung).glob("seg_*.m4s"))]
        joined.write_bytes(b"".join(p.read_bytes() for p in parts))
        times[rung] = _keyframe_times(joined)
    assert times["234p"] == times["360p"]
    assert times["360p"][:5] == pytest.approx([0, 2, 4, 6, 8], abs=0.05)


@pytest.mark.parametrize(
    ("content", "filename", "reason"),
    [
        (b"", "empty.mp4", None),  # refused at creation: size must be > 0
        (b"this is a text file, not a video at all" * 100, "notes.mp4", "not a readable video"),
        (b"\x00" * 5000, "zeros.mov", "not a readable video"),
    ],
)
async def test_bad_files_are_refused_with_a_reason(
    sqlite_harness: Harness,
    tmp_path: Path,
    content: bytes,
    filename: str,
    reason: str | None,
) -> None:
    harness = sqlite_harness
    editor = await editor_token(harness.client, harness.app)
    title_id = await new_title(harness, editor)
    if not content:
        response = await harness.client.post(
            "/v1/media/uploads",
            json={"title_id": title_id, "filename": filename, "size": 0},
            headers=bearer(editor),
        )
        assert response.status_code == 422
        return
    path = tmp_path / filename
    path.write_bytes(content)
    result = await upload(harness.client, editor, title_id, path, filename=filename)
    assert result["status"] == 422
    assert reason in result["detail"]
    assets = (
        await harness.client.get(f"/v1/media/titles/{title_id}/assets", headers=bearer(editor))
    ).json()
    assert assets == []


async def test_truncated_and_audio_only_files(sqlite_harness: Harness, tmp_path: Path) -> None:
    harness = sqlite_harness
    editor = await editor_token(harness.client, harness.app)
    title_id = await new_title(harness, editor)
    whole = (await clip(seconds=10)).read_bytes()
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(whole[: len(whole) // 2])
    result = await upload(harness.client, editor, title_id, truncated)
    assert result["status"] == 422
    audio = tmp_path / "tone.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=d=2", str(audio)], check=True
    )
    result = await upload(harness.client, editor, title_id, audio)
    assert result["status"] == 422
    assert "no video stream" in result["detail"]


@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd.mp4",
        "a/b.mp4",
        ".hidden.mp4",
        "x\x00y.mp4",
        "movie.exe",
        "name with\nnewline.mp4",
        "x" * 300 + ".mp4",
    ],
)
async def test_hostile_filenames_are_refused(harness: Harness, filename: str) -> None:
    editor = await editor_token(harness.client, harness.app)
    title_id = await new_title(harness, editor)
    response = await harness.client.post(
        "/v1/media/uploads",
        json={"title_id": title_id, "filename": filename, "size": 1000},
        headers=bearer(editor),
    )
    assert response.status_code == 422


async def test_absurd_resolution_is_refused(sqlite_harness: Harness, tmp_path: Path) -> None:
    harness = sqlite_harness
    editor = await editor_token(harness.client, harness.app)
    title_id = await new_title(harness, editor)
    tiny = tmp_path / "tiny.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=12x12:rate=10",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(tiny),
        ],
        check=True,
    )
    result = await upload(harness.client, editor, title_id, tiny)
    assert result["status"] == 422
    assert "12x12" in result["detail"]
