"""A new profile in real Chromium: the home page asks what it likes, and rows follow.

Same setup as tests/browser: Debian's `chromium` through Playwright, the platform as a real
process on loopback. The model is built by `reelscale recs train`, which the server picks
up from the artifact store, as a deployment with a training job does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.test_watch import BROWSER_ARGS, CHROMIUM, PASSWORD, _require_chromium
from tests.e2e.server import cli, reelscale_env, running

pytestmark = pytest.mark.slow
GENRES = ["Drama", "Horror"]


def _wait_for(check: Any, what: str, seconds: float = 60.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """A running platform with titles in two genres and a model of them; yields (url, ids)."""
    _require_chromium()
    tmp = tmp_path_factory.mktemp("onboarding")
    env = reelscale_env(tmp / "data")
    with running(env, log=tmp / "server.log") as url, httpx.Client(base_url=url, timeout=30) as c:
        for email in ("new@example.com", "ed@example.com"):
            signed = c.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
            assert signed.status_code == 201
        assert cli(env, "members", "set-role", "ed@example.com", "editor").returncode == 0
        editor = c.post("/v1/auth/login", json={"email": "ed@example.com", "password": PASSWORD})
        auth = {"Authorization": f"Bearer {editor.json()['access_token']}"}
        ids = []
        for n in range(16):
            genre = GENRES[n % 2]
            made = c.post(
                "/v1/catalog/titles",
                headers=auth,
                json={
                    "kind": "movie",
                    "name": f"{genre} Night {n}",
                    "release_year": 2000 + n,
                    "maturity_rating": "PG",
                    "original_language": "en",
                    "genres": [genre],
                    # Dramas are the popular ones: a page led by horror is the picks' doing.
                    "popularity": 100.0 + n if genre == "Drama" else float(n),
                },
            )
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        trained = cli(env, "recs", "train")
        assert trained.returncode == 0, trained.stderr
        member = c.post("/v1/auth/login", json={"email": "new@example.com", "password": PASSWORD})
        token = member.json()["access_token"]
        made = c.post(
            "/v1/profiles",
            json={"name": "Newbie", "avatar": "green"},
            headers={"Authorization": f"Bearer {token}"},
        )
        profile = made.json()["id"]
        selected = c.post(
            f"/v1/profiles/{profile}/select", headers={"Authorization": f"Bearer {token}"}
        ).json()["access_token"]

        def model_loaded() -> bool:
            home = c.get("/v1/recs/home", headers={"Authorization": f"Bearer {selected}"})
            return any(row["items"] for row in home.json()["rows"])

        _wait_for(model_loaded, "the server to load the trained model")
        yield url, ids


def test_a_new_profile_picks_genres_and_titles_and_its_rows_follow(
    site: tuple[str, list[str]],
) -> None:
    from playwright.sync_api import sync_playwright

    url, ids = site
    horror = [ids[n] for n in range(16) if GENRES[n % 2] == "Horror"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/login")
        page.fill("input[name=email]", "new@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Who's watching?")
        page.click("[data-profile=Newbie]")

        page.wait_for_selector("#onboarding")
        assert page.get_attribute("#row-popular .card", "href") is not None
        save = page.locator("#onboarding-save")
        assert save.is_disabled()  # nothing chosen yet
        chip = page.locator("[data-pick-genre=horror]")
        assert chip.get_attribute("aria-pressed") == "false"
        chip.click()
        assert chip.get_attribute("aria-pressed") == "true"
        assert save.is_enabled()
        picked = horror[-1]
        page.click(f"[data-pick-title='{picked}']")
        assert "1 genre and 1 title" in page.inner_text("#onboarding-status")
        shots = os.environ.get("REELSCALE_SCREENSHOTS")
        if shots:  # for a person to look at the panel
            page.screenshot(path=str(Path(shots) / "reelscale-onboarding.png"), full_page=True)
        save.click()

        # The rows reload led by the picks, and the panel does not come back.
        page.wait_for_selector("#row-top-picks .card", timeout=30_000)
        assert page.locator("#onboarding").count() == 0
        cards = page.locator("#row-top-picks .card")
        hrefs = [cards.nth(i).get_attribute("href") for i in range(cards.count())]
        assert hrefs[0] == f"/title/{picked}"
        assert {h.removeprefix("/title/") for h in hrefs if h} <= set(horror)
        page.reload()
        page.wait_for_selector("#row-top-picks .card")
        assert page.locator("#onboarding").count() == 0
        assert errors == []
        if shots:
            page.screenshot(path=str(Path(shots) / "reelscale-onboarded.png"), full_page=True)
        browser.close()
