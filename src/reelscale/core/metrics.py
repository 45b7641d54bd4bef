"""Prometheus metrics, one registry per app so that nothing is created at import time."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    """The platform-wide metrics; services register their own on `registry`."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.http_requests = Counter(
            "reelscale_http_requests_total",
            "HTTP requests served, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "reelscale_http_request_duration_seconds",
            "Time from request start to the end of the response body.",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.http_in_flight = Gauge(
            "reelscale_http_requests_in_flight",
            "Requests being served now.",
            registry=self.registry,
        )
        self.task_restarts = Counter(
            "reelscale_supervised_task_restarts_total",
            "Restarts of supervised background tasks after a crash.",
            ["task"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "reelscale_events_published_total",
            "Events this process stored on the event stream, by type.",
            ["type"],
            registry=self.registry,
        )
        self.events_failed = Counter(
            "reelscale_events_failed_total",
            "Events this process could not store on the event stream, by type.",
            ["type"],
            registry=self.registry,
        )
