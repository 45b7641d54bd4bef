"""Catalog consistency: a failed transaction leaves nothing behind, concurrent writes that
share new genres and people all succeed, and search sees every committed change.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from reelscale.catalog import service
from reelscale.catalog.models import Genre, Person, Season, Title
from reelscale.catalog.schemas import TitleIn
from tests.catalog.builders import TITLES, create, movie, names, search, series
from tests.conftest import Harness
from tests.support import bearer, editor_token

pytestmark = pytest.mark.asyncio


async def test_concurrent_creates_sharing_a_new_genre_and_person(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    bodies = [
        movie(f"Noir {i}", genres=["Neo Noir"], credits=[{"name": "Sam Spade"}]) for i in range(4)
    ]
    # A client that hands back 5xx responses instead of re-raising the app's exception.
    transport = httpx.ASGITransport(app=harness.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = await asyncio.gather(
            *(client.post(TITLES, json=b, headers=bearer(editor)) for b in bodies)
        )
    assert [r.status_code for r in responses] == [201] * 4
    genres = (await harness.client.get("/v1/catalog/genres", headers=bearer(editor))).json()
    assert genres == [{"slug": "neo-noir", "name": "Neo Noir", "titles": 4}]


class Abort(Exception):
    """Raised inside a transaction to make it roll back."""


async def create_then_fail(harness: Harness, data: TitleIn) -> None:
    async with harness.app.state.platform.db.transaction() as db_session:
        title = await service.create_title(
            db_session=db_session, data=data, now=harness.clock.now()
        )
        assert [g.slug for g in title.genres] == ["pilot-season"]
        for model in (Title, Genre, Person, Season):  # flushed, so visible in here
            assert await db_session.scalar(select(func.count()).select_from(model)) == 1
        raise Abort


async def test_a_failed_transaction_writes_nothing(harness: Harness) -> None:
    db = harness.app.state.platform.db
    data = TitleIn.model_validate(
        series(
            "Never Aired",
            genres=["Pilot Season"],
            credits=[{"name": "Ghost Writer", "role": "writer"}],
            seasons=[
                {"number": 1, "episodes": [{"number": 1, "name": "P", "runtime_minutes": 30}]}
            ],
        )
    )

    with pytest.raises(Abort):
        await create_then_fail(harness, data)
    async with db.session() as db_session:
        for model in (Title, Genre, Person, Season):
            assert await db_session.scalar(select(func.count()).select_from(model)) == 0
    editor = await editor_token(harness.client, harness.app)
    assert await names(harness, editor) == []
    assert await search(harness, editor, "never aired") == []


async def test_search_sees_a_rename_made_in_the_same_clock_tick(harness: Harness) -> None:
    editor = await editor_token(harness.client, harness.app)
    title = await create(harness, editor, movie("Old Harbour"))
    assert (await search(harness, editor, "old harbour"))[0]["title"]["id"] == title["id"]
    renamed = await harness.client.patch(
        f"{TITLES}/{title['id']}", json={"name": "Crimson Tide Pool"}, headers=bearer(editor)
    )
    assert renamed.status_code == 200
    hits = await search(harness, editor, "crimson tide pool")
    assert [hit["title"]["id"] for hit in hits] == [title["id"]]
