"""An admin watches the Operations page in real Chromium while a viewer plays a title.

The platform runs on loopback (uvicorn in this test's event loop, so Playwright's async API
shares it); the viewer's plays and heartbeats go through the real playback API, which puts
them on the event stream, where the analytics functions read them. Nothing is put on the
stream by the test. Playwright drives Debian's `chromium` (skipped outside CI when absent,
a failure with CI=true), as tests/browser does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelscale.accounts.roles import Role
from reelscale.core.clock import SystemClock
from tests.analytics.conftest import Site, running_site
from tests.conftest import server_unreachable
from tests.media.media_support import clip
from tests.support import PASSWORD, bearer, grant, login, signup

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("REELSCALE_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def _playable_title(site: Site, client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    title = await client.post(
        "/v1/catalog/titles",
        headers=auth,
        json={
            "kind": "movie",
            "name": "Signals on the Dashboard",
            "release_year": 2025,
            "maturity_rating": "PG",
            "original_language": "en",
            "runtime_minutes": 1,
            "genres": ["Documentary"],
            "synopsis": "Numbers rise as people press play.",
        },
    )
    assert title.status_code == 201, title.text
    title_id: str = title.json()["id"]
    data = (await clip(seconds=4, width=416, height=234)).read_bytes()
    upload = await client.post(
        "/v1/media/uploads",
        headers=auth,
        json={"title_id": title_id, "filename": "signals.mp4", "size": len(data)},
    )
    assert upload.status_code == 201, upload.text
    done = await client.patch(
        f"/v1/media/uploads/{upload.json()['id']}",
        content=data,
        headers={**auth, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert done.status_code == 200, done.text
    async with asyncio.timeout(180):
        while True:
            playable = await client.get("/v1/media/playable", headers=auth)
            if any(item["title_id"] == title_id for item in playable.json()):
                return title_id
            await asyncio.sleep(0.3)


async def _viewer_token(client: httpx.AsyncClient) -> str:
    email = f"v{uuid.uuid4().hex[:8]}@example.com"
    await signup(client, email, PASSWORD)
    token = (await login(client, email, PASSWORD))["access_token"]
    profile = await client.post(
        "/v1/profiles", json={"name": "Robin", "avatar": "teal"}, headers=bearer(token)
    )
    selected = await client.post(
        f"/v1/profiles/{profile.json()['id']}/select", headers=bearer(token)
    )
    return str(selected.json()["access_token"])


async def _watch(client: httpx.AsyncClient, token: str, title_id: str) -> None:
    """Press play and send two heartbeats, as the player does."""
    play = await client.post(
        "/v1/playback/sessions", json={"title_id": title_id, "device": "web"}, headers=bearer(token)
    )
    assert play.status_code == 201, play.text
    session = play.json()["session_id"]
    for position in (2.0, 4.0):
        beat: dict[str, Any] = {"position_s": position, "watched_ms": 2000, "rebuffer_ms": 250}
        response = await client.post(
            f"/v1/playback/sessions/{session}/heartbeat", json=beat, headers=bearer(token)
        )
        assert response.status_code == 200, response.text


async def test_an_admin_sees_the_charts_move_as_a_viewer_plays(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        server_unreachable("Debian's chromium", FileNotFoundError(CHROMIUM))
    from playwright.async_api import async_playwright

    async with running_site(tmp_path, clock=SystemClock()) as site:
        if getattr(site.app.state, "functions", None) is None:
            pytest.fail("create_app has no functions runtime: nothing would feed analytics")
        admin_email = f"ops{uuid.uuid4().hex[:8]}@example.com"
        async with site.client() as client:
            await signup(client, admin_email, PASSWORD)
            await grant(site.app, admin_email, Role.ADMIN)
            admin = bearer((await login(client, admin_email, PASSWORD))["access_token"])
            title_id = await _playable_title(site, client, admin)
            viewer = await _viewer_token(client)

            async with async_playwright() as p:
                browser = await p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS
                )
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(f"{site.url}/login")
                await page.fill("input[name=email]", admin_email)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]")
                await page.wait_for_selector("text=Who's watching?")
                await page.click("#add-profile")
                await page.fill("input[name=name]", "Desk")
                await page.click(".modal button[type=submit]")
                await page.click("[data-profile=Desk]")
                await page.wait_for_selector("#nav-ops:not([hidden])")
                await page.click("#nav-ops")
                await page.wait_for_url("**/ops")
                await page.wait_for_selector("#chart-viewers")
                # The live stream is open (its first snapshot drawn) before anything plays.
                await page.wait_for_function("window.__ops && window.__ops.received >= 2")
                assert await page.get_attribute("#ops-viewers", "data-value") == "0"
                before = await page.evaluate("window.__ops.received")

                await _watch(client, viewer, title_id)

                # Pushed over SSE, not reloaded: the counters and the charts move.
                await page.wait_for_function(
                    "document.querySelector('#ops-viewers').dataset.value === '1'"
                    " && document.querySelector('#chart-plays').dataset.total === '1'",
                    timeout=30_000,
                )
                assert await page.evaluate("window.__ops.received") > before
                assert await page.get_attribute("#chart-viewers", "data-last") == "1"
                rebuffer = await page.get_attribute("#chart-rebuffer", "data-last")
                assert rebuffer is not None
                assert float(rebuffer) == pytest.approx(500 / 4500)
                await page.wait_for_selector(
                    "#top-titles td.name:text('Signals on the Dashboard')", timeout=10_000
                )
                assert await page.inner_text("#top-titles tbody tr td:nth-child(3)") == "1"
                assert await page.inner_text("#ops-status") != "reconnecting…"
                shots = os.environ.get("REELSCALE_SCREENSHOTS")
                if shots:  # for a person to look at the page
                    await page.screenshot(path=str(Path(shots) / "reelscale-ops.png"))
                assert errors == []
                await browser.close()
