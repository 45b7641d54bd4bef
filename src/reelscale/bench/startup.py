"""`reelscale bench startup`: time to first frame in headless Chromium, over many plays.

A platform process runs on loopback with a transcoded title. A signed-in viewer opens the
title page and presses Play; the clock runs from the press to the first video frame the
browser presents (requestVideoFrameCallback), across the whole path: play authorization,
signed manifest, playlists, init segment, first media segment, decode.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from reelscale.media.synthetic import ClipSpec, generate_clip

PASSWORD = "bench-startup-password"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(c: httpx.Client, env: dict[str, str], work: Path) -> str:
    """A member with a profile and one transcoded title; returns the title id."""
    for email in ("bench-viewer@example.com", "bench-editor@example.com"):
        c.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    subprocess.run(
        [
            sys.executable,
            "-m",
            "reelscale",
            "members",
            "set-role",
            "bench-editor@example.com",
            "editor",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    editor = c.post(
        "/v1/auth/login", json={"email": "bench-editor@example.com", "password": PASSWORD}
    ).json()
    auth = {"Authorization": f"Bearer {editor['access_token']}"}
    found = c.get("/v1/catalog/search", params={"q": "Startup Bench"}, headers=auth).json()
    if found:
        return str(found[0]["title"]["id"])
    title = c.post(
        "/v1/catalog/titles",
        headers=auth,
        json={
            "kind": "movie",
            "name": "Startup Bench",
            "release_year": 2026,
            "maturity_rating": "G",
            "original_language": "en",
            "runtime_minutes": 1,
            "genres": ["Documentary"],
        },
    ).json()
    source = asyncio.run(generate_clip(ClipSpec("testcard", 30), work / "startup-source.mp4"))
    data = source.read_bytes()
    upload = c.post(
        "/v1/media/uploads",
        headers=auth,
        json={"title_id": title["id"], "filename": "bench.mp4", "size": len(data)},
    ).json()
    c.patch(
        f"/v1/media/uploads/{upload['id']}",
        content=data,
        headers={**auth, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    for _ in range(1200):
        assets = c.get(f"/v1/media/titles/{title['id']}/assets", headers=auth).json()
        if assets and assets[0]["state"] == "ready":
            break
        time.sleep(0.25)
    return str(title["id"])


def run(
    work: Path, *, plays: int = 20, chromium: str = "/usr/bin/chromium", log: Any = print
) -> dict[str, Any]:

    work.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCALE_")}
    env.update({"REELSCALE_DATA_DIR": str(work / "data"), "REELSCALE_LOG_LEVEL": "WARNING"})
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # noqa: S603 - this interpreter running reelscale itself
        [sys.executable, "-m", "reelscale", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            for _ in range(200):
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            title_id = _prepare(c, env, work)
            tokens = c.post(
                "/v1/auth/login", json={"email": "bench-viewer@example.com", "password": PASSWORD}
            ).json()
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            profiles = c.get("/v1/profiles", headers=auth).json() or [
                c.post("/v1/profiles", json={"name": "Bench"}, headers=auth).json()
            ]
            profile = profiles[0]
            selected = c.post(f"/v1/profiles/{profile['id']}/select", headers=auth).json()
        log(f"server ready at {url}; title {title_id}; {plays} plays")
        samples = _measure(
            url,
            title_id,
            plays,
            chromium,
            {
                "access_token": selected["access_token"],
                "refresh_token": tokens["refresh_token"],
                "profile": profile,
            },
            log,
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
    ordered = sorted(samples)
    return {
        "ttff_ms_p50": round(statistics.median(ordered), 1),
        "ttff_ms_p95": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
        "plays": len(ordered),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, loopback",
    }


def _measure(
    url: str, title_id: str, plays: int, chromium: str, stored: dict[str, Any], log: Any
) -> list[float]:
    from playwright.sync_api import sync_playwright

    samples: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{url}/login")
        page.evaluate(
            f"localStorage.setItem('reelscale.session', {json.dumps(json.dumps(stored))})"
        )
        for n in range(plays):
            page.goto(f"{url}/title/{title_id}")
            page.wait_for_selector("#play-button")
            page.click("#play-button")
            page.wait_for_function(
                "window.__player && window.__player.ttff_ms !== undefined", timeout=30_000
            )
            ttff = float(page.evaluate("window.__player.ttff_ms"))
            samples.append(ttff)
            log(f"play {n + 1}: {ttff:.0f} ms")
            page.click("#back")  # leaving stops the session, freeing the plan's stream
        browser.close()
    return samples
