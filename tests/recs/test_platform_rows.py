"""Recommendations wired into the platform: rows from the real catalog and playback data."""

from __future__ import annotations

from pathlib import Path

from reelscale.catalog.inprocess import InProcessCatalog
from reelscale.playback.inprocess import InProcessSignals
from reelscale.recs.artifacts import ModelStore
from reelscale.recs.rows import Viewer
from reelscale.recs.serving import RecsService
from reelscale.recs.sources import PlatformSources
from reelscale.recs.training import train_and_publish
from tests.conftest import Harness
from tests.support import bearer, editor_token, login, profile_token, signup

GENRES = ["Drama", "Kids", "Thriller", "Kids"]  # enough kids titles to fill a row


async def test_home_rows_and_more_like_this(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    editor = await editor_token(h.client, h.app)
    ids = []
    for n in range(16):
        rating = "TV-Y" if GENRES[n % 4] == "Kids" else "R"
        made = await h.client.post(
            "/v1/catalog/titles",
            headers=bearer(editor),
            json={
                "kind": "movie",
                "name": f"Row Title {n}",
                "release_year": 2000 + n,
                "maturity_rating": rating,
                "original_language": "en",
                "genres": [GENRES[n % 4]],
                "popularity": float(n),
                "credits": [{"name": f"Actor {n % 3}"}],
            },
        )
        assert made.status_code == 201
        ids.append(made.json()["id"])
    await h.app.state.recs.retrain()  # new titles join at the next scheduled training

    await signup(h.client, "rows@example.com")
    account = (await login(h.client, "rows@example.com"))["access_token"]
    assert (await h.client.get("/v1/recs/home", headers=bearer(account))).status_code == 403
    adult = (await profile_token(h.client, account, "Grown"))[1]
    kid = (await profile_token(h.client, account, "Small", is_kids=True))[1]

    home = (await h.client.get("/v1/recs/home", headers=bearer(adult))).json()
    assert home["rows"]
    seen = [item["id"] for row in home["rows"] for item in row["items"]]
    assert len(seen) == len(set(seen))  # no title twice across rows
    assert set(seen) <= set(ids)

    kids_home = (await h.client.get("/v1/recs/home", headers=bearer(kid))).json()
    kid_seen = {item["id"] for row in kids_home["rows"] for item in row["items"]}
    kids_titles = {ids[n] for n in range(16) if GENRES[n % 4] == "Kids"}
    assert kid_seen
    assert kid_seen <= kids_titles  # the ceiling holds in every row

    similar = await h.client.get(f"/v1/recs/titles/{ids[0]}/more-like-this", headers=bearer(adult))
    assert similar.status_code == 200
    assert ids[0] not in {item["id"] for item in similar.json()["items"]}


async def test_the_training_job_reads_the_platform_and_a_server_serves_its_artifact(
    sqlite_harness: Harness, tmp_path: Path
) -> None:
    """`reelscale recs train`'s job against the real database, through the same in-process
    clients the server uses; a second server picks the artifact up without building."""
    h = sqlite_harness
    editor = await editor_token(h.client, h.app)
    for n in range(6):
        made = await h.client.post(
            "/v1/catalog/titles",
            headers=bearer(editor),
            json={
                "kind": "movie",
                "name": f"Trained Title {n}",
                "release_year": 2010 + n,
                "maturity_rating": "R",
                "original_language": "en",
                "genres": ["Drama"],
                "popularity": float(n),
            },
        )
        assert made.status_code == 201
    sources = PlatformSources(
        catalog=InProcessCatalog(h.app.state.catalog),
        signals=InProcessSignals(h.app.state.playback),
    )
    store = ModelStore(tmp_path / "models")
    steps: list[str] = []
    summary = await train_and_publish(sources, store, clock=h.clock, progress=steps.append)
    assert summary["version"] == 1
    assert summary["titles"] == 6
    assert steps[:2] == ["reading titles", "reading signals"]
    assert store.current_version() == 1

    server = RecsService(
        catalog=sources.catalog, signals=sources.signals, clock=h.clock, store=store
    )
    await server.start()
    try:
        assert server.builds == 0
        assert server.model.version == 1
        shown = {c.name for r in server.home_rows(viewer=Viewer("someone")) for c in r.items}
        assert {f"Trained Title {n}" for n in range(6)} <= shown
    finally:
        await server.stop()
