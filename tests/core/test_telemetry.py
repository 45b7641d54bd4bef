"""Service metrics on the stream: per-service deltas of the process's HTTP counters."""

from __future__ import annotations

import math

import pytest

from reelscale.core.telemetry import (
    ServiceMetricsReporter,
    _quantile_ms,
    route_family,
    service_of,
)
from reelscale.events.consumer import GroupConsumer
from tests.conftest import Harness


@pytest.mark.parametrize(
    ("route", "service"),
    [
        ("/v1/auth/login", "accounts"),
        ("/v1/profiles/{profile_id}/select", "accounts"),
        ("/v1/catalog/titles/{title_id}", "catalog"),
        ("/v1/playback/sessions", "playback"),
        ("/v1/recs/home", "recs"),
        ("/media/s/{rest:path}", "delivery"),
        ("/healthz", "health"),
        ("/", "web"),
        ("unmatched", "web"),
        ("/v1/catalog/*", "catalog"),
        ("/v1/nonsense/x", "other"),
    ],
)
def test_routes_belong_to_services(route: str, service: str) -> None:
    assert service_of(route) == service


@pytest.mark.parametrize(
    ("path", "family"),
    [
        ("/v1/catalog/titles/123", "/v1/catalog/*"),
        ("/v1/auth", "/v1/auth/*"),
        ("/v1/made-up/123", "unmatched"),
        ("/media/s/a/b", "/media/*"),
        ("/wp-admin.php", "unmatched"),
    ],
)
def test_unrouted_requests_are_labelled_by_service_prefix(path: str, family: str) -> None:
    assert route_family(path) == family


def test_quantiles_interpolate_within_buckets_like_prometheus() -> None:
    # 100 observations: 50 at or under 10 ms, 40 more under 100 ms, 10 under 1 s.
    buckets = {0.01: 50.0, 0.1: 90.0, 1.0: 100.0, math.inf: 100.0}
    assert _quantile_ms(buckets, 0.5) == pytest.approx(10.0)
    assert _quantile_ms(buckets, 0.9) == pytest.approx(100.0)
    assert _quantile_ms(buckets, 0.99) == pytest.approx(910.0)
    assert _quantile_ms({0.01: 0.0, math.inf: 0.0}, 0.5) is None
    assert _quantile_ms({0.01: 0.0, math.inf: 4.0}, 0.5) == pytest.approx(10.0)  # past the end


async def test_each_report_holds_the_requests_since_the_last_one(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    reporter: ServiceMetricsReporter = h.app.state.telemetry
    await reporter.report()  # a baseline: whatever start-up did
    for _ in range(3):
        assert (await h.client.get("/healthz")).status_code == 200
    assert (await h.client.get("/v1/catalog/genres")).status_code == 401  # no token
    assert (await h.client.post("/v1/auth/login", json={})).status_code == 422

    first = await reporter.report()
    health = first["services"]["health"]
    assert health["requests"] == 3
    assert health["client_errors"] == 0
    assert health["latency_ms_p50"] is not None
    assert health["latency_ms_p50"] > 0
    assert first["services"]["catalog"]["client_errors"] == 1
    assert first["services"]["accounts"]["requests"] == 1

    assert (await h.client.get("/healthz")).status_code == 200
    second = await reporter.report()
    assert second["services"]["health"]["requests"] == 1
    assert "accounts" not in second["services"]  # nothing new there

    consumer = GroupConsumer(h.app.state.platform.events.store, "metrics", group="test-metrics")
    published = [r.event for r in await consumer.poll()]
    await consumer.close()
    assert [e.type for e in published][-2:] == ["service.metrics", "service.metrics"]
    assert published[-2].data == first
    assert published[-1].data["instance"] == reporter.instance
