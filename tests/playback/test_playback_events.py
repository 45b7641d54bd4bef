"""What playback publishes on the event stream: sessions, player reports, thumbs, browsing."""

from __future__ import annotations

import uuid
from typing import Any

from reelscale.core.events import CloudEvent
from reelscale.events.consumer import GroupConsumer
from reelscale.playback.inprocess import InProcessSignals
from tests.conftest import Harness
from tests.media.media_support import new_title
from tests.playback.test_playback_api import PLAY, playable_title, viewer
from tests.support import bearer, editor_token


async def read_stream(h: Harness, stream: str) -> list[CloudEvent]:
    """Every event on a stream, per shard in order (a fresh consumer group each call)."""
    store = h.app.state.platform.events.store
    consumer = GroupConsumer(store, stream, group=f"test-{uuid.uuid4().hex[:12]}")
    records = []
    while batch := await consumer.poll():
        records.extend(batch)
    await consumer.close()
    records.sort(key=lambda r: (r.shard, r.sequence))
    return [r.event for r in records]


def of_session(events: list[CloudEvent], session_id: str) -> list[str]:
    return [e.type for e in events if e.data.get("session_id") == session_id]


async def test_a_session_and_its_player_reports_reach_the_stream_in_order(
    sqlite_harness: Harness,
) -> None:
    h = sqlite_harness
    title_id, duration = await playable_title(h)
    token = await viewer(h, "reporter@example.com")
    play = await h.client.post(
        PLAY, json={"title_id": title_id, "device": "tv"}, headers=bearer(token)
    )
    assert play.status_code == 201, play.text
    session = play.json()["session_id"]
    beat = await h.client.post(
        f"{PLAY}/{session}/heartbeat",
        json={
            "position_s": 4.0,
            "rendition": "360p",
            "watched_ms": 3500,
            "rebuffer_ms": 500,
            "events": [
                {"type": "quality_switch", "from_rendition": "240p", "to_rendition": "360p"},
                {"type": "rebuffer", "duration_ms": 500},
            ],
        },
        headers=bearer(token),
    )
    assert beat.status_code == 200, beat.text
    stop = await h.client.post(
        f"{PLAY}/{session}/stop",
        json={"position_s": 5.0, "events": [{"type": "error", "code": "media.decode"}]},
        headers=bearer(token),
    )
    assert stop.status_code == 204

    events = await read_stream(h, "playback")
    assert of_session(events, session) == [
        "playback.started",
        "playback.quality_switched",
        "playback.rebuffered",
        "playback.heartbeat",
        "playback.error",
        "playback.stopped",
    ]
    by_type = {e.type: e for e in events if e.data.get("session_id") == session}
    heartbeat = by_type["playback.heartbeat"].data
    assert (heartbeat["watched_ms"], heartbeat["rebuffer_ms"]) == (3500, 500)
    assert (heartbeat["device"], heartbeat["title_id"]) == ("tv", title_id)
    assert heartbeat["duration_s"] == duration
    assert by_type["playback.quality_switched"].data["to_rendition"] == "360p"
    assert by_type["playback.error"].data == {
        "session_id": session,
        "title_id": title_id,
        "code": "media.decode",
        "fatal": False,
        "before_first_frame": False,
    }


async def test_a_refused_play_is_published_as_a_start_failure(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    editor = await editor_token(h.client, h.app)
    not_ready = await new_title(h, editor)  # no video uploaded: not playable
    token = await viewer(h, "refused@example.com")
    refused = await h.client.post(PLAY, json={"title_id": not_ready}, headers=bearer(token))
    assert refused.status_code == 409
    failures = [e for e in await read_stream(h, "playback") if e.type == "playback.start_failed"]
    assert [(e.data["title_id"], e.data["reason"]) for e in failures] == [
        (not_ready, "not_playable")
    ]


BAD_BEATS: list[dict[str, Any]] = [
    {"position_s": 1, "rebuffer_ms": 60_001},  # more than a heartbeat interval can hold
    {"position_s": 1, "watched_ms": -1},
    {"position_s": 1, "events": [{"type": "rebuffer", "duration_ms": 1}] * 33},  # too many
    {"position_s": 1, "events": [{"type": "teleport"}]},
    {"position_s": 1, "events": [{"type": "error", "code": "bad code\n"}]},
    {"position_s": 1, "events": [{"type": "quality_switch"}]},  # no to_rendition
]


async def test_malformed_player_reports_are_refused_and_publish_nothing(
    sqlite_harness: Harness,
) -> None:
    h = sqlite_harness
    title_id, _ = await playable_title(h)
    token = await viewer(h, "garbled@example.com")
    session = (
        await h.client.post(PLAY, json={"title_id": title_id}, headers=bearer(token))
    ).json()["session_id"]
    for body in BAD_BEATS:
        response = await h.client.post(
            f"{PLAY}/{session}/heartbeat", json=body, headers=bearer(token)
        )
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    assert of_session(await read_stream(h, "playback"), session) == ["playback.started"]


async def test_thumbs_are_kept_published_and_become_recs_signals(
    sqlite_harness: Harness,
) -> None:
    h = sqlite_harness
    editor = await editor_token(h.client, h.app)
    liked, disliked = await new_title(h, editor), await new_title(h, editor)
    token = await viewer(h, "thumbs@example.com")
    url = "/v1/playback/thumbs/"
    assert (await h.client.get(url + liked, headers=bearer(token))).json()["thumb"] == 0
    for title, thumb in ((liked, 1), (disliked, 1), (disliked, -1)):
        response = await h.client.put(url + title, json={"thumb": thumb}, headers=bearer(token))
        assert response.status_code == 200, response.text
    assert (await h.client.get(url + disliked, headers=bearer(token))).json()["thumb"] == -1

    signals = {
        str(s.title_id): s.thumb
        for s in await InProcessSignals(h.app.state.playback).recs_signals()
    }
    assert signals == {liked: 1, disliked: -1}

    cleared = await h.client.put(url + liked, json={"thumb": 0}, headers=bearer(token))
    assert cleared.status_code == 200
    assert (await h.client.get(url + liked, headers=bearer(token))).json()["thumb"] == 0

    for bad in ({"thumb": 2}, {"thumb": "up"}, {}, {"thumb": 1, "extra": True}):
        response = await h.client.put(url + liked, json=bad, headers=bearer(token))
        assert response.status_code == 422, bad
    missing = await h.client.put(
        url + "00000000-0000-0000-0000-000000000000", json={"thumb": 1}, headers=bearer(token)
    )
    assert missing.status_code == 404
    thumbs = [
        e.data["thumb"] for e in await read_stream(h, "playback") if e.type == "playback.thumb"
    ]
    assert thumbs == [1, 1, -1, 0]


async def test_browse_activity_is_published_on_the_browse_stream(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    editor = await editor_token(h.client, h.app)
    title = await new_title(h, editor)
    token = await viewer(h, "browser@example.com")
    batch = {
        "events": [
            {"type": "impression", "surface": "home", "row": "trending", "title_ids": [title]},
            {"type": "click", "surface": "home", "row": "trending", "title_id": title, "rank": 0},
            {"type": "search", "query_chars": 5, "results": 3},
        ]
    }
    accepted = await h.client.post("/v1/playback/activity", json=batch, headers=bearer(token))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"accepted": 3}
    events = await read_stream(h, "browse")
    assert [e.type for e in events] == ["browse.impression", "browse.click", "browse.search"]
    assert (events[1].data["title_id"], events[1].data["rank"]) == (title, 0)

    for bad in (
        {"events": []},
        {"events": [batch["events"][2]] * 51},
        {"events": [{"type": "hover", "title_id": title}]},
        {"events": [{"type": "impression", "surface": "moon", "row": "x", "title_ids": [title]}]},
        {"events": [{"type": "click", "surface": "home", "title_id": "not-a-uuid"}]},
    ):
        response = await h.client.post("/v1/playback/activity", json=bad, headers=bearer(token))
        assert response.status_code == 422
    unauthenticated = await h.client.post("/v1/playback/activity", json=batch)
    assert unauthenticated.status_code == 401
    assert len(await read_stream(h, "browse")) == 3
