"""The analytics API over a real server: access, validation, live events and their ending."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reelscale.analytics import api as analytics_api
from reelscale.analytics.schemas import AnalyticsSnapshot
from reelscale.analytics.service import Analytics, AnalyticsConfig
from reelscale.core.clock import Clock, FakeClock
from reelscale.core.events import CloudEvent
from reelscale.events.records import Record
from tests.analytics.conftest import Site, admin_headers, running_site, sse_events
from tests.support import bearer

pytestmark = pytest.mark.slow


def _started(site: Site, n: int, *, shard: int = 0, title: str = "title-a") -> Record:
    now = site.clock.now()
    return Record(
        stream="playback",
        shard=shard,
        sequence=n,
        partition_key=f"s{n}",
        timestamp=now,
        event=CloudEvent(
            id=uuid.uuid4().hex,
            source="tests",
            type="playback.started",
            time=now,
            data={"session_id": f"s{n}", "title_id": title},
        ),
    )


async def test_the_snapshot_needs_ops_read(site: Site) -> None:
    async with site.client() as client:
        anonymous = await client.get("/v1/ops/analytics")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        member = await client.get("/v1/ops/analytics", headers=bearer(await site.token()))
        assert member.status_code == 403
        assert "ops:read" in member.json()["detail"]
        live = await client.get("/v1/ops/analytics/live", headers=bearer(await site.token()))
        assert live.status_code == 403
        admin = await client.get("/v1/ops/analytics", headers=await admin_headers(site))
        assert admin.status_code == 200
        AnalyticsSnapshot.model_validate(admin.json())


@pytest.mark.parametrize("minutes", ["0", "61", "-1", "ten", "1e3", ""])
async def test_bad_minutes_are_a_422_problem(site: Site, minutes: str) -> None:
    headers = await admin_headers(site)
    async with site.client() as client:
        for path in ("/v1/ops/analytics", "/v1/ops/analytics/live"):
            response = await client.get(path, params={"minutes": minutes}, headers=headers)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"


async def test_the_snapshot_shows_what_was_ingested(site: Site) -> None:
    site.analytics.ingest([_started(site, n) for n in range(1, 4)])
    async with site.client() as client:
        response = await client.get(
            "/v1/ops/analytics", params={"minutes": 5}, headers=await admin_headers(site)
        )
    body = AnalyticsSnapshot.model_validate(response.json())
    assert sum(p.plays for p in body.plays_per_minute) == 3
    assert body.current.viewers == 3
    assert body.top_titles is not None
    assert [(t.title_id, t.sessions) for t in body.top_titles.titles] == [("title-a", 3)]


async def test_live_pushes_a_snapshot_at_once_and_again_on_change(site: Site) -> None:
    headers = await admin_headers(site)
    async with (
        site.client() as client,
        client.stream("GET", "/v1/ops/analytics/live", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = sse_events(response)
        first = await anext(events)
        assert first.event == "snapshot"
        assert json.loads(first.data)["current"]["viewers"] == 0
        site.analytics.ingest([_started(site, 1), _started(site, 2)])
        async with asyncio.timeout(10):
            async for message in events:
                snapshot = json.loads(message.data)
                if snapshot["current"]["viewers"] == 2:
                    assert int(message.id or 0) > int(first.id or 0)
                    break


async def test_live_keeps_sending_without_changes(site: Site) -> None:
    headers = await admin_headers(site)
    async with (
        site.client() as client,
        client.stream("GET", "/v1/ops/analytics/live", headers=headers) as response,
    ):
        events = sse_events(response)
        async with asyncio.timeout(10):  # the first at once, then one every ~2 s
            assert [(await anext(events)).event for _ in range(3)] == ["snapshot"] * 3


async def test_changes_tick_when_nothing_changes() -> None:
    analytics = Analytics(clock=FakeClock())
    loop = asyncio.get_running_loop()
    times: list[float] = []
    async with asyncio.timeout(5):
        async for _ in analytics.changes(every_s=0.3, min_gap_s=0.1):
            times.append(loop.time())
            if len(times) == 4:
                break
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.25 < gap < 1.5 for gap in gaps), gaps


async def test_a_client_that_goes_away_leaves_nothing_behind(site: Site) -> None:
    headers = await admin_headers(site)
    for _ in range(3):
        async with (
            site.client() as client,
            client.stream("GET", "/v1/ops/analytics/live", headers=headers) as response,
        ):
            events = sse_events(response)
            await anext(events)
            assert site.analytics.subscribers >= 1
    async with asyncio.timeout(10):
        while site.analytics.subscribers:
            await asyncio.sleep(0.05)


async def test_shutdown_ends_live_streams_promptly(tmp_path: Path) -> None:
    async with running_site(tmp_path) as site:
        headers = await admin_headers(site)
        async with (
            site.client() as client,
            client.stream("GET", "/v1/ops/analytics/live", headers=headers) as response,
        ):
            events = sse_events(response)
            await anext(events)
            began = time.monotonic()
            stopping = asyncio.create_task(site.stop())
            remaining = [e async for e in events]  # the stream ends: no hanging request
            await stopping
            took = time.monotonic() - began
        assert all(e.event == "snapshot" for e in remaining)
        assert took < 5  # well inside uvicorn's 10 s graceful timeout: nothing waited on
        assert site.analytics.subscribers == 0


async def test_stopping_analytics_ends_every_subscriber() -> None:
    analytics = Analytics(clock=FakeClock())
    await analytics.start()
    seen: list[int] = []

    async def follow() -> None:
        async for version in analytics.changes(every_s=60):
            seen.append(version)

    followers = [asyncio.create_task(follow()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert analytics.subscribers == 3
    await analytics.stop()
    async with asyncio.timeout(2):
        await asyncio.gather(*followers)
    assert analytics.subscribers == 0
    assert seen == [0, 0, 0]


async def test_changes_are_coalesced_not_queued() -> None:
    clock = FakeClock()
    analytics = Analytics(clock=clock)
    versions: list[int] = []

    async def follow() -> None:
        async for version in analytics.changes(every_s=60, min_gap_s=0.2):
            versions.append(version)
            if len(versions) == 3:
                return

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.01)
    for n in range(1, 201):  # 200 changes in quick succession
        analytics.ingest([_record(clock, n)])
        await asyncio.sleep(0.001)
    async with asyncio.timeout(5):
        await task
    assert versions[0] == 0
    assert len(versions) == 3  # a handful of wake-ups for 200 changes, each the latest
    assert versions[1] < versions[2] <= 200


def _record(clock: FakeClock, n: int) -> Record:
    return Record(
        "playback",
        0,
        n,
        "k",
        clock.now(),
        CloudEvent(
            id=uuid.uuid4().hex,
            source="tests",
            type="playback.started",
            time=clock.now(),
            data={"session_id": f"s{n}", "title_id": "t"},
        ),
    )


async def test_the_stream_ends_when_the_token_expires(site: Site) -> None:
    headers = await admin_headers(site)
    async with (
        site.client() as client,
        client.stream("GET", "/v1/ops/analytics/live", headers=headers) as response,
    ):
        events = sse_events(response)
        await anext(events)
        site.clock.advance(timedelta(minutes=16).total_seconds())
        rest = [e async for e in events]
    assert rest[-1].event == "expired"
    async with site.client() as client:  # and the expired token no longer opens one
        again = await client.get("/v1/ops/analytics/live", headers=headers)
    assert again.status_code == 401


async def test_live_streams_are_capped(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analytics_api, "MAX_LIVE_SUBSCRIBERS", 1)
    headers = await admin_headers(site)
    async with (
        site.client() as client,
        client.stream("GET", "/v1/ops/analytics/live", headers=headers) as response,
    ):
        events = sse_events(response)  # kept: a collected generator would close the stream
        await anext(events)
        assert site.analytics.subscribers == 1
        async with client.stream("GET", "/v1/ops/analytics/live", headers=headers) as refused:
            assert refused.status_code == 429  # (a 200 here would stream on: not read)
            assert refused.headers["retry-after"] == "5"
            assert refused.headers["content-type"] == "application/problem+json"


def _report(sequence: int, time: datetime, services: dict[str, Any]) -> Record:
    event = CloudEvent(
        id=uuid.uuid4().hex,
        source="tests",
        type="service.metrics",
        time=time,
        data={"services": services},
    )
    return Record("metrics", 0, sequence, "i", time, event)


class CountingAnalytics(Analytics):
    """Analytics that counts the snapshots it builds (one per message a stream sends)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.snapshots = 0

    def snapshot(self, *, minutes: int = 60) -> AnalyticsSnapshot:
        self.snapshots += 1
        return super().snapshot(minutes=minutes)


async def test_a_client_that_does_not_read_holds_back_only_itself(tmp_path: Path) -> None:
    def build(clock: Clock) -> Analytics:
        return CountingAnalytics(clock=clock, config=AnalyticsConfig(warmup_s=0))

    async with running_site(tmp_path, analytics=build) as site:
        analytics = site.analytics
        assert isinstance(analytics, CountingAnalytics)
        # Make every snapshot large (~hundreds of KB): many services over the last hour.
        services = {f"svc-{i:03}": {"requests": 10, "errors": 1} for i in range(200)}
        base = site.clock.now()
        analytics.ingest(
            [_report(n + 1, base - timedelta(minutes=59 - n), services) for n in range(60)]
        )
        size = len(analytics.snapshot(minutes=60).model_dump_json())
        assert size > 300_000
        token = (await admin_headers(site))["Authorization"]
        port = int(site.url.rsplit(":", 1)[1])
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", port))
        slow.sendall(
            f"GET /v1/ops/analytics/live?minutes=60 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {token}\r\n\r\n".encode()
        )
        async with asyncio.timeout(90):  # a stall here must fail, not hang the suite
            sequence = 1000
            try:
                counts = [-1]
                while len(counts) < 15 and (len(counts) < 3 or counts[-1] != counts[-2]):
                    deadline = asyncio.get_running_loop().time() + 2.5
                    while asyncio.get_running_loop().time() < deadline:  # changes keep coming
                        sequence += 1
                        one = {"api": {"requests": 1, "errors": 0}}
                        analytics.ingest([_report(sequence, site.clock.now(), one)])
                        await asyncio.sleep(0.05)
                    counts.append(analytics.snapshots)
                # The stream stalls once the socket buffers are full: no snapshot is built (or
                # queued) for it while the client does not read, though changes keep coming.
                assert counts[-1] == counts[-2], counts
                assert analytics.subscribers == 1
                # Meanwhile another client is served as usual.
                headers = await admin_headers(site)
                async with site.client() as client:
                    quick = await client.get("/v1/ops/analytics?minutes=1", headers=headers)
                    assert quick.status_code == 200
            finally:
                slow.close()
            while analytics.subscribers:  # and once it goes away its stream ends
                await asyncio.sleep(0.05)
