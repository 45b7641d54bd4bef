"""End to end: events on a real embedded stream, read by the functions runtime into Analytics;
and on a running platform, events its own API publishes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reelscale.analytics.functions import FEEDS, register
from reelscale.analytics.schemas import AnalyticsSnapshot
from reelscale.analytics.service import Analytics, AnalyticsConfig
from reelscale.core.clock import SystemClock
from reelscale.core.events import CloudEvent
from reelscale.events.embedded import EmbeddedEventStore
from reelscale.events.records import PutEntry
from reelscale.functions import FunctionRegistry, FunctionsRuntime
from tests.analytics.conftest import admin_headers, running_site
from tests.analytics.support import heartbeat, service_report, started, stopped
from tests.support import bearer

pytestmark = pytest.mark.slow


def _entry(type: str, data: dict[str, Any], key: str, time: datetime) -> PutEntry:
    event = CloudEvent(id=uuid.uuid4().hex, source="tests", type=type, time=time, data=data)
    return PutEntry(event, key)


async def _until(check: Callable[[AnalyticsSnapshot], bool], analytics: Analytics) -> None:
    async with asyncio.timeout(30):
        while not check(analytics.snapshot()):
            await asyncio.sleep(0.05)


async def test_functions_feed_analytics_from_the_embedded_stream(tmp_path: Path) -> None:
    store = EmbeddedEventStore(tmp_path / "events")
    await store.start()
    try:
        await store.create_stream("playback", shards=4)
        await store.create_stream("browse", shards=2)
        await store.create_stream("metrics", shards=1)
        now = datetime.now(UTC)
        # Written before the functions start: a new group starts a retention back, so these
        # are read too.
        earlier = now - timedelta(minutes=2)
        await store.put_batch(
            "playback",
            [_entry("playback.started", started(f"e{n}"), f"e{n}", earlier) for n in range(8)],
        )
        analytics = Analytics(config=AnalyticsConfig(warmup_s=0.5))
        registry = FunctionRegistry()
        register(registry, analytics, instance="it")
        assert sorted(spec.name for spec in registry) == sorted(name for name, _, _ in FEEDS)
        assert {spec.consumer_group for spec in registry} == {f"{n}-it" for n, _, _ in FEEDS}
        runtime = FunctionsRuntime(store, registry, refresh_s=0.1)
        await runtime.start()
        try:
            await _until(lambda s: sum(p.plays for p in s.plays_per_minute) == 8, analytics)
            sessions = [f"s{n}" for n in range(20)]  # spread over the four shards by key
            now = datetime.now(UTC)
            await store.put_batch(
                "playback",
                [_entry("playback.started", started(s, "title-x"), s, now) for s in sessions]
                + [
                    _entry(
                        "playback.heartbeat",
                        heartbeat(s, "title-x", watched_ms=9000, rebuffer_ms=1000),
                        s,
                        now,
                    )
                    for s in sessions
                ]
                + [_entry("playback.stopped", stopped(s, "title-x"), s, now) for s in sessions[:5]],
            )
            await store.put_batch(
                "metrics",
                [
                    _entry(
                        "service.metrics",
                        service_report("a", catalog={"requests": 40, "errors": 2}),
                        "a",
                        now,
                    )
                ],
            )
            await store.put_batch(
                "browse",
                [
                    _entry(
                        "browse.search",
                        {"profile_id": "p", "query_chars": 3, "results": 0},
                        "p",
                        now,
                    )
                ],
            )
            await _until(
                lambda s: (
                    sum(p.plays for p in s.plays_per_minute) == 28
                    and bool(s.services)
                    and bool(s.browse)
                    and s.current.viewers == 15
                ),
                analytics,
            )
            snap = analytics.snapshot()
            assert snap.top_titles is not None
            assert snap.top_titles.titles[0].title_id == "title-x"
            assert snap.top_titles.titles[0].sessions == 20
            assert sum(p.rebuffer_ms for p in snap.rebuffering) == 20 * 1000
            assert snap.services[-1].services["catalog"].errors == 2
            assert snap.browse[-1].zero_result_searches == 1
            assert all(s.errors == 0 for s in await runtime.status())
        finally:
            await runtime.stop()
        # A restart resumes at the checkpoints: nothing is counted twice.
        runtime = FunctionsRuntime(store, registry, refresh_s=0.1)
        await runtime.start()
        try:
            await store.put_batch(
                "playback",
                [_entry("playback.started", started("after"), "after", datetime.now(UTC))],
            )
            await _until(lambda s: sum(p.plays for p in s.plays_per_minute) == 29, analytics)
            await asyncio.sleep(0.5)
            assert sum(p.plays for p in analytics.snapshot().plays_per_minute) == 29
        finally:
            await runtime.stop()
    finally:
        await store.stop()


async def test_the_platform_api_feeds_its_own_analytics(tmp_path: Path) -> None:
    """A refused play and the process's own request counts reach analytics through the
    platform's stream and functions (no test code puts events anywhere)."""
    async with running_site(tmp_path, clock=SystemClock(), metrics_interval_s=1.0) as site:
        if getattr(site.app.state, "functions", None) is None:
            pytest.skip("this create_app has no functions runtime to feed analytics")
        headers = await admin_headers(site)
        viewer = await site.token()
        async with site.client() as client:
            profile = await client.post(
                "/v1/profiles", json={"name": "Robin", "avatar": "teal"}, headers=bearer(viewer)
            )
            assert profile.status_code == 201, profile.text
            selected = await client.post(
                f"/v1/profiles/{profile.json()['id']}/select", headers=bearer(viewer)
            )
            token = selected.json()["access_token"]
            refused = await client.post(
                "/v1/playback/sessions",
                json={"title_id": str(uuid.uuid4()), "device": "web"},
                headers=bearer(token),
            )
            assert refused.status_code == 404
            async with asyncio.timeout(30):
                while True:
                    snap = AnalyticsSnapshot.model_validate(
                        (await client.get("/v1/ops/analytics", headers=headers)).json()
                    )
                    if sum(p.refused for p in snap.starts) == 1 and snap.services:
                        break
                    await asyncio.sleep(0.2)
        (refusal,) = [p.reasons for p in snap.starts if p.refused]
        assert list(refusal.values()) == [1]  # one reason, whichever slug playback gives
        served = {name for point in snap.services for name in point.services}
        assert "accounts" in served  # sign-up, login, profiles: the process's own report
