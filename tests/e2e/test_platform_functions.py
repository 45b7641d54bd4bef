"""The platform's own functions, end to end in one process: events published by a request
reach their consumers through the stream, not through an in-process call."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Harness
from tests.media.media_support import new_title
from tests.playback.test_playback_api import viewer
from tests.support import bearer, editor_token


def titles_in(home: dict[str, Any]) -> set[str]:
    return {item["id"] for row in home["rows"] for item in row["items"]}


async def function_status(h: Harness, name: str) -> dict[str, Any]:
    statuses = {s.name: s for s in await h.app.state.functions.status()}
    return statuses[name].model_dump()


async def test_a_thumbs_down_reaches_the_recommender_through_the_stream(
    sqlite_harness: Harness,
) -> None:
    h = sqlite_harness
    editor = await editor_token(h.client, h.app)
    titles = [await new_title(h, editor) for _ in range(8)]
    await h.app.state.recs.retrain()  # the catalog changed; don't wait for the debounce
    token = await viewer(h, "judge@example.com")
    home = (await h.client.get("/v1/recs/home", headers=bearer(token))).json()
    assert set(titles) <= titles_in(home)

    disliked = titles[0]
    thumb = await h.client.put(
        f"/v1/playback/thumbs/{disliked}", json={"thumb": -1}, headers=bearer(token)
    )
    assert thumb.status_code == 200
    for _ in range(100):
        home = (await h.client.get("/v1/recs/home", headers=bearer(token))).json()
        if disliked not in titles_in(home):
            break
        await asyncio.sleep(0.05)
    assert disliked not in titles_in(home)
    assert set(titles[1:]) <= titles_in(home), home
    live = await function_status(h, "recs-live")
    assert live["invocations"] >= 1
    assert live["errors"] == 0


async def test_a_catalog_change_invokes_the_rebuild_function(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    editor = await editor_token(h.client, h.app)
    await new_title(h, editor)
    for _ in range(100):
        status = await function_status(h, "recs-catalog")
        if status["invocations"]:
            break
        await asyncio.sleep(0.05)
    assert status["invocations"] >= 1
    assert status["errors"] == 0
    assert status["dead_letters"] == 0
