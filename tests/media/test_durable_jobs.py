"""Killing the platform mid-transcode loses nothing and never half-publishes a title.

The server runs as a real process group and is SIGKILLed (with its ffmpeg children, as a
crashed machine would lose them) at moments spread across the job. After each kill the
published state is checked for consistency; a restarted process then resumes the job once
the dead worker's lease lapses, and the title ends up complete.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import cli, free_port, reelscale_env
from tests.media.media_support import clip

pytestmark = pytest.mark.slow
PASSWORD = "a long enough password"


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelscale", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(log.read_text())


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _check_published(data: Path) -> list[str]:
    """Every rendition row has all its files, and the master lists only such renditions."""
    db = sqlite3.connect(data / "reelscale.db")
    rows = db.execute("SELECT asset_id, name FROM media_renditions").fetchall()
    db.close()
    names = []
    for asset_id, name in rows:
        rung = data / "media" / "assets" / asset_id.replace("-", "") / name
        playlist = (rung / "index.m3u8").read_text()
        assert (rung / "init.mp4").stat().st_size > 0
        for segment in re.findall(r"^(seg_\d+\.m4s)$", playlist, re.M):
            assert (rung / segment).stat().st_size > 0, f"{name}/{segment} missing"
        assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
        names.append(name)
    for master in (data / "media" / "assets").glob("*/master.m3u8"):
        listed = re.findall(r"^(\w+)/index\.m3u8$", master.read_text(), re.M)
        assert set(listed) <= set(names), (listed, names)
    return names


def test_kill_anywhere_then_resume(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = reelscale_env(data, transcode_lease_s="3")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    process = _start(env, port, log)
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            c.post("/v1/auth/signup", json={"email": "ed@example.com", "password": PASSWORD})
            assert cli(env, "members", "set-role", "ed@example.com", "editor").returncode == 0
            token = c.post(
                "/v1/auth/login", json={"email": "ed@example.com", "password": PASSWORD}
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            title = c.post(
                "/v1/catalog/titles",
                headers=auth,
                json={
                    "kind": "movie",
                    "name": "Crash Course",
                    "release_year": 2025,
                    "maturity_rating": "PG",
                    "original_language": "en",
                },
            ).json()
            data_bytes = asyncio.run(clip(seconds=30, width=1280, height=720)).read_bytes()
            upload = c.post(
                "/v1/media/uploads",
                headers=auth,
                json={"title_id": title["id"], "filename": "crash.mp4", "size": len(data_bytes)},
            ).json()
            done = c.patch(
                f"/v1/media/uploads/{upload['id']}",
                content=data_bytes,
                headers={
                    **auth,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            assert done.status_code == 200

        # Kill at spread-out moments into the job, restarting each time.
        for delay in (1.5, 4.0, 7.0):
            time.sleep(delay)
            _kill_group(process)
            _check_published(data)
            process = _start(env, port, log)

        with httpx.Client(base_url=url, timeout=30) as c:
            token = c.post(
                "/v1/auth/login", json={"email": "ed@example.com", "password": PASSWORD}
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                assets = c.get(f"/v1/media/titles/{title['id']}/assets", headers=auth).json()
                if assets[0]["state"] == "ready" and assets[0]["jobs"][0]["state"] == "done":
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"never finished: {assets}\n{log.read_text()[-3000:]}")
        asset = assets[0]
        assert [r["name"] for r in asset["renditions"]] == ["234p", "360p", "540p", "720p"]
        assert asset["jobs"][0]["state"] == "done"
        assert sorted(_check_published(data)) == ["234p", "360p", "540p", "720p"]
        # No staging leftovers from the killed attempts survive a finished job.
        assert not list((data / "staging" / "jobs").glob("*/*"))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _kill_group(process)
