"""Periodic service metrics on the event stream: requests, errors and latency per service.

Every process publishes one `service.metrics` event per interval with the change in its
HTTP counters since the previous one, grouped by the service a route belongs to. Live
analytics sums them across processes; Prometheus keeps scraping `/metrics` as before (the
two views come from the same counters, so they agree).
"""

from __future__ import annotations

import math
import os
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from reelscale.core.events import EventPublisher
from reelscale.core.lifecycle import Service
from reelscale.core.metrics import Metrics

SOURCE = "reelscale/telemetry"

# The first path segment after /v1 names the service that owns a route.
_SERVICE_BY_SEGMENT = {
    "auth": "accounts",
    "account": "accounts",
    "members": "accounts",
    "profiles": "accounts",
    "keys": "accounts",
    "catalog": "catalog",
    "media": "media",
    "playback": "playback",
    "recs": "recs",
    "ops": "ops",
}


def service_of(route: str) -> str:
    """The service that owns a route template (`/v1/catalog/titles/{id}` -> catalog)."""
    parts = route.strip("/").split("/")
    if parts[0] == "v1" and len(parts) > 1:
        return _SERVICE_BY_SEGMENT.get(parts[1], "other")
    if parts[0] == "media":
        return "delivery"  # signed media paths, served by playback's delivery route
    if parts[0] in ("healthz", "readyz", "metrics"):
        return "health"
    return "web"


def route_family(path: str) -> str:
    """A metrics label for a request no route matched (refused at the edge, or unknown):
    the owning service's prefix when it has one, so the label set stays small."""
    parts = path.strip("/").split("/", 2)
    if parts[0] == "v1" and len(parts) > 1 and parts[1] in _SERVICE_BY_SEGMENT:
        return f"/v1/{parts[1]}/*"
    if parts[0] == "media":
        return "/media/*"
    return "unmatched"


@dataclass
class _Totals:
    requests: float = 0.0
    errors: float = 0.0
    client_errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))


def _read(metrics: Metrics) -> dict[str, _Totals]:
    """The process's cumulative counters, per service."""
    totals: dict[str, _Totals] = defaultdict(_Totals)
    for family in metrics.http_requests.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            entry = totals[service_of(sample.labels["route"])]
            entry.requests += sample.value
            status = sample.labels["status"]
            if status.startswith("5"):
                entry.errors += sample.value
            elif status.startswith("4"):
                entry.client_errors += sample.value
    for family in metrics.http_latency.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                totals[service_of(sample.labels["route"])].buckets[bound] += sample.value
    return totals


def _quantile_ms(buckets: dict[float, float], q: float) -> float | None:
    """A quantile from cumulative histogram bucket counts, interpolated within its bucket
    (as Prometheus's histogram_quantile does); None when nothing was observed."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return round(lower * 1000, 3)  # beyond the last finite bucket
            share = (rank - below) / (count - below) if count > below else 1.0
            return round((lower + (bound - lower) * share) * 1000, 3)
        lower, below = bound, count
    return None


class ServiceMetricsReporter(Service):
    """Publishes this process's per-service request counts every `interval_s` seconds."""

    name = "telemetry"

    def __init__(
        self,
        *,
        events: EventPublisher,
        metrics: Metrics,
        roles: frozenset[str],
        interval_s: float,
        instance: str | None = None,
    ) -> None:
        super().__init__()
        self.events = events
        self.metrics = metrics
        self.roles = roles
        self.interval_s = interval_s
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self._previous: dict[str, _Totals] = {}
        self.every("report", interval_s, self._tick, metrics=metrics)

    async def on_start(self) -> None:
        self._previous = _read(self.metrics)

    async def _tick(self) -> None:
        await self.report()

    async def report(self) -> dict[str, Any]:
        """Publish the change since the last report; returns what it published."""
        current = _read(self.metrics)
        services: dict[str, Any] = {}
        for name, now in current.items():
            before = self._previous.get(name, _Totals())
            requests = now.requests - before.requests
            if requests <= 0:
                continue
            delta = {b: now.buckets[b] - before.buckets.get(b, 0.0) for b in now.buckets}
            services[name] = {
                "requests": int(requests),
                "errors": int(now.errors - before.errors),
                "client_errors": int(now.client_errors - before.client_errors),
                "latency_ms_p50": _quantile_ms(delta, 0.5),
                "latency_ms_p99": _quantile_ms(delta, 0.99),
            }
        self._previous = current
        data = {
            "instance": self.instance,
            "roles": sorted(self.roles),
            "interval_s": self.interval_s,
            "services": services,
        }
        await self.events.emit(
            source=SOURCE, type="service.metrics", subject=self.instance, data=data
        )
        return data
