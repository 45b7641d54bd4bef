"""Pressing play: entitlement, maturity, stream limits, signed URLs, heartbeats and resume."""

from __future__ import annotations

from typing import Any

import pytest

from reelscale.accounts.roles import Role
from tests.conftest import Harness
from tests.media.media_support import clip, new_title, upload, wait_for_asset
from tests.support import bearer, editor_token, grant, login, profile_token, signup

PLAY = "/v1/playback/sessions"


async def playable_title(h: Harness, *, rating: str = "PG") -> tuple[str, float]:
    editor = await editor_token(h.client, h.app)
    title_id = await new_title(h, editor, rating=rating)
    result = await upload(h.client, editor, title_id, await clip(seconds=20, width=416, height=234))
    assert result["status"] == 200, result
    asset = await wait_for_asset(h, editor, title_id, state="ready")
    return title_id, float(asset["duration_s"])


async def viewer(h: Harness, email: str, **profile: Any) -> str:
    await signup(h.client, email)
    account = (await login(h.client, email))["access_token"]
    return (await profile_token(h.client, account, profile.pop("name", "Me"), **profile))[1]


async def test_play_fetch_and_resume(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    title_id, duration = await playable_title(h)
    token = await viewer(h, "watcher@example.com")
    play = await h.client.post(PLAY, json={"title_id": title_id}, headers=bearer(token))
    assert play.status_code == 201, play.text
    body = play.json()
    assert body["resume_at_s"] == 0
    manifest = await h.client.get(body["manifest_url"])
    assert manifest.status_code == 200
    assert manifest.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "#EXT-X-STREAM-INF" in manifest.text
    rung = manifest.text.strip().splitlines()[-1]
    playlist = await h.client.get(body["media_prefix"] + rung)
    segment_name = next(line for line in playlist.text.splitlines() if line.endswith(".m4s"))
    segment = await h.client.get(body["media_prefix"] + rung.rsplit("/", 1)[0] + "/" + segment_name)
    assert segment.status_code == 200
    assert segment.headers["content-type"] == "video/iso.segment"
    ranged = await h.client.get(body["manifest_url"], headers={"Range": "bytes=0-6"})
    assert ranged.status_code == 206
    assert ranged.content == b"#EXTM3U"

    session = body["session_id"]
    half = duration * 0.5
    beat = await h.client.post(
        f"{PLAY}/{session}/heartbeat", json={"position_s": half}, headers=bearer(token)
    )
    assert beat.status_code == 200
    assert beat.json()["media_prefix"].startswith("/media/s/")
    stop = await h.client.post(
        f"{PLAY}/{session}/stop", json={"position_s": half}, headers=bearer(token)
    )
    assert stop.status_code == 204
    again = (await h.client.post(PLAY, json={"title_id": title_id}, headers=bearer(token))).json()
    assert again["resume_at_s"] == pytest.approx(half)
    cw = (await h.client.get("/v1/playback/continue-watching", headers=bearer(token))).json()
    assert [c["title_id"] for c in cw] == [title_id]
    assert cw[0]["fraction"] == pytest.approx(0.5, abs=0.01)
    assert {"playback.started", "playback.heartbeat", "playback.stopped"} <= set(h.event_types())


@pytest.mark.parametrize(
    ("fraction", "resume", "watched", "continuing"),
    [(0.03, False, False, False), (0.5, True, False, True), (0.95, False, True, False)],
)
async def test_resume_rules(
    sqlite_harness: Harness, fraction: float, resume: bool, watched: bool, continuing: bool
) -> None:
    h = sqlite_harness
    title_id, duration = await playable_title(h)
    token = await viewer(h, f"rules{int(fraction * 100)}@example.com")
    session = (await h.client.post(PLAY, json={"title_id": title_id}, headers=bearer(token))).json()
    position = duration * fraction
    await h.client.post(
        f"{PLAY}/{session['session_id']}/stop", json={"position_s": position}, headers=bearer(token)
    )
    again = (await h.client.post(PLAY, json={"title_id": title_id}, headers=bearer(token))).json()
    assert (again["resume_at_s"] > 0) is resume
    history = (await h.client.get("/v1/playback/history", headers=bearer(token))).json()
    assert history[0]["watched"] is watched
    cw = (await h.client.get("/v1/playback/continue-watching", headers=bearer(token))).json()
    assert bool(cw) is continuing


async def test_signed_urls_refuse_tampering_and_expiry(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    title_id, _ = await playable_title(h)
    token = await viewer(h, "tamper@example.com")
    body = (await h.client.post(PLAY, json={"title_id": title_id}, headers=bearer(token))).json()
    _, _, _, session, expires, sig, asset, _ = body["manifest_url"].split("/", 7)
    forged_sig = sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")
    for url in (
        f"/media/s/{session}/{expires}/{forged_sig}/{asset}/master.m3u8",
        f"/media/s/{session}/{int(expires) + 3600}/{sig}/{asset}/master.m3u8",  # longer life
        f"/media/s/{'0' * 32}/{expires}/{sig}/{asset}/master.m3u8",  # another session
        f"/media/s/{session}/{expires}/{sig}/{'f' * 32}/master.m3u8",  # another asset
        f"/media/s/{session}/{expires}/{sig}/{asset}/../../../secret.key",
    ):
        response = await h.client.get(url)
        assert response.status_code in (403, 404), url
        assert response.status_code != 200
    assert (await h.client.get(body["manifest_url"])).status_code == 200
    h.clock.advance(601)  # URLs live 10 minutes unless a heartbeat renews them
    expired = await h.client.get(body["manifest_url"])
    assert expired.status_code == 403
    assert "expired" in expired.json()["detail"]


async def test_kids_profile_and_stream_limit(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    adult_title, _ = await playable_title(h, rating="R")
    kid = await viewer(h, "small@example.com", name="Kid", is_kids=True)
    denied = await h.client.post(PLAY, json={"title_id": adult_title}, headers=bearer(kid))
    assert denied.status_code in (403, 404)

    await signup(h.client, "basic@example.com")
    account = (await login(h.client, "basic@example.com"))["access_token"]
    # Plans: the default is standard, two screens at once.
    one = (await profile_token(h.client, account, "One"))[1]
    two = (await profile_token(h.client, account, "Two"))[1]
    three = (await profile_token(h.client, account, "Three"))[1]
    first = await h.client.post(PLAY, json={"title_id": adult_title}, headers=bearer(one))
    second = await h.client.post(PLAY, json={"title_id": adult_title}, headers=bearer(two))
    third = await h.client.post(PLAY, json={"title_id": adult_title}, headers=bearer(three))
    assert [first.status_code, second.status_code, third.status_code] == [201, 201, 429]
    assert third.json()["streams_limit"] == 2
    await h.client.post(
        f"{PLAY}/{first.json()['session_id']}/stop", json={"position_s": 1}, headers=bearer(one)
    )
    retry = await h.client.post(PLAY, json={"title_id": adult_title}, headers=bearer(three))
    assert retry.status_code == 201
    # A screen that goes silent stops counting after the live window.
    h.clock.advance(120)
    fourth = await h.client.post(PLAY, json={"title_id": adult_title}, headers=bearer(one))
    assert fourth.status_code == 201


async def test_play_needs_a_profile_and_a_ready_title(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    await signup(h.client, "noprofile@example.com")
    account = (await login(h.client, "noprofile@example.com"))["access_token"]
    editor = await editor_token(h.client, h.app)
    title_id = await new_title(h, editor)
    no_profile = await h.client.post(PLAY, json={"title_id": title_id}, headers=bearer(account))
    assert no_profile.status_code == 403
    token = (await profile_token(h.client, account, "P"))[1]
    not_ready = await h.client.post(PLAY, json={"title_id": title_id}, headers=bearer(token))
    assert not_ready.status_code == 409
    missing = await h.client.post(
        PLAY, json={"title_id": "00000000-0000-0000-0000-000000000000"}, headers=bearer(token)
    )
    assert missing.status_code == 404
    await grant(h.app, "noprofile@example.com", Role.MEMBER)
    bad = await h.client.post(PLAY, json={"title_id": title_id, "extra": 1}, headers=bearer(token))
    assert bad.status_code == 422
    someone_elses = await h.client.post(
        f"{PLAY}/00000000-0000-0000-0000-000000000000/heartbeat",
        json={"position_s": 1},
        headers=bearer(token),
    )
    assert someone_elses.status_code == 404
