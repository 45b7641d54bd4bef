"""A viewer in real Chromium: sign in, pick a profile, play, switch quality, reload, resume.

Playwright drives Debian's `chromium` package through its executable (Playwright's own
browser download is not used). The platform runs as a real process on loopback with a
title uploaded and transcoded through the API beforehand.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import server_unreachable
from tests.e2e.server import cli, reelscale_env, running
from tests.media.media_support import clip

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("REELSCALE_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "a long enough password"
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


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        server_unreachable("Debian's chromium", FileNotFoundError(CHROMIUM))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A running platform with one transcoded title; yields (url, title id)."""
    _require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    env = reelscale_env(tmp / "data")
    with running(env, log=tmp / "server.log") as url, httpx.Client(base_url=url, timeout=30) as c:
        for email in ("viewer@example.com", "ed@example.com"):
            assert (
                c.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}).status_code
                == 201
            )
        assert cli(env, "members", "set-role", "ed@example.com", "editor").returncode == 0
        editor = c.post(
            "/v1/auth/login", json={"email": "ed@example.com", "password": PASSWORD}
        ).json()
        auth = {"Authorization": f"Bearer {editor['access_token']}"}
        title = c.post(
            "/v1/catalog/titles",
            headers=auth,
            json={
                "kind": "movie",
                "name": "Signal in the Static",
                "release_year": 2025,
                "maturity_rating": "PG",
                "original_language": "en",
                "runtime_minutes": 1,
                "genres": ["Documentary"],
                "synopsis": "A test card finds its voice.",
            },
        ).json()
        source = asyncio.run(clip(seconds=40, width=640, height=360))
        data = source.read_bytes()
        up = c.post(
            "/v1/media/uploads",
            headers=auth,
            json={"title_id": title["id"], "filename": "signal.mp4", "size": len(data)},
        ).json()
        done = c.patch(
            f"/v1/media/uploads/{up['id']}",
            content=data,
            headers={
                **auth,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert done.status_code == 200, done.text
        for _ in range(600):
            assets = c.get(f"/v1/media/titles/{title['id']}/assets", headers=auth).json()
            if assets and assets[0]["state"] == "ready":
                break
            asyncio.run(asyncio.sleep(0.2))
        else:
            raise AssertionError(f"not transcoded: {assets}")
        member = c.post(
            "/v1/auth/login", json={"email": "viewer@example.com", "password": PASSWORD}
        ).json()
        c.post(
            "/v1/profiles",
            json={"name": "Robin", "avatar": "teal"},
            headers={"Authorization": f"Bearer {member['access_token']}"},
        )
        yield url, title["id"]


def test_sign_in_play_switch_quality_and_resume(site: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    url, title_id = site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        console_errors: list[str] = []
        page.on("pageerror", lambda exc: console_errors.append(str(exc)))

        page.goto(f"{url}/login")
        page.fill("input[name=email]", "viewer@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Who's watching?")
        page.click("[data-profile=Robin]")
        page.wait_for_selector("#row-ready .card")  # the home page shows the playable title

        page.goto(f"{url}/title/{title_id}")
        page.click("#play-button")
        page.wait_for_url(f"**/watch/{title_id}")
        page.wait_for_function(
            "window.__player && window.__player.video.currentTime > 2.5", timeout=30_000
        )
        assert page.evaluate("window.__player.errors") == []
        assert page.evaluate("window.__player.video.error") is None

        # Force the rung that is not playing and see the player switch to it.
        levels = page.evaluate("window.__player.hls.levels.map(l => l.height)")
        assert sorted(levels) == [234, 360]
        current = page.evaluate("window.__player.hls.currentLevel")
        target = 0 if current != 0 else 1
        page.evaluate(f"window.__player.hls.currentLevel = {target}")
        page.wait_for_function(
            f"window.__player.hls.currentLevel === {target} && "
            f"window.__player.video.videoHeight === {levels[target]}",
            timeout=30_000,
        )
        page.wait_for_function("window.__player.video.currentTime > 6", timeout=30_000)

        # Pause (which reports the position), reload, and expect to resume near it.
        page.evaluate("window.__player.video.pause()")
        position = page.evaluate("window.__player.video.currentTime")
        page.wait_for_timeout(500)
        page.reload()
        page.wait_for_function(
            "window.__player && window.__player.video.currentTime > 0", timeout=30_000
        )
        resumed = page.evaluate("window.__player.video.currentTime")
        assert resumed >= position - 2.5, (position, resumed)
        assert page.evaluate("window.__player.errors") == []
        assert console_errors == []
        shots = os.environ.get("REELSCALE_SCREENSHOTS")
        if shots:  # for a person to look at the player
            page.screenshot(path=str(Path(shots) / "reelscale-player.png"))
        browser.close()


def test_editor_uploads_and_watches_the_transcode(site: tuple[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = site
    source = asyncio.run(clip(seconds=8, width=416, height=234))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/login")
        page.fill("input[name=email]", "ed@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Who's watching?")
        page.click("#add-profile")
        page.fill("input[name=name]", "Desk")
        page.click(".modal button[type=submit]")
        page.click("[data-profile=Desk]")
        page.wait_for_selector("#nav-editor:not([hidden])")
        page.click("#nav-editor")
        page.fill("#title-search", "signal statc")  # a typo, as people type
        page.click("[data-title]")
        page.set_input_files("#file", str(source))
        page.wait_for_selector("text=received — transcoding", timeout=30_000)
        # The new asset (the title's second) appears in the table and reaches "ready".
        page.wait_for_selector("#assets tr:nth-child(2) .pill.ok", timeout=120_000)
        assert page.inner_text("#assets tr:nth-child(2) .pill.ok") == "ready"
        assert "234p" in page.inner_text("#assets tr:nth-child(2)")
        assert errors == []
        browser.close()
