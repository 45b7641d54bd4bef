"""The proxy's counters: plain integers on the request path, read by a collector at scrape.

A prometheus_client child costs a lock and a few calls per update; at tens of thousands of
requests a second that is measurable, so the request path only adds to dicts and lists and
`ProxyCollector` turns them into metric families when /metrics is read.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from reelscale.edge.proxy.balancer import Pool
from reelscale.edge.ratelimit import RateLimiter

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ProxyStats:
    """What happened, as counts. Keys are (pool, status), (pool, kind) or kind."""

    def __init__(self) -> None:
        self.responses: dict[tuple[str, int], int] = {}
        self.upstream_errors: dict[tuple[str, str], int] = {}
        self.client_errors: dict[str, int] = {}
        self.latency: dict[str, list[int]] = {}  # per pool: a count per bucket, then +Inf
        self.latency_sum: dict[str, float] = {}
        self.connections_open = 0
        self.connections_total = 0

    def responded(self, pool: str, status: int, seconds: float) -> None:
        key = (pool, status)
        self.responses[key] = self.responses.get(key, 0) + 1
        counts = self.latency.get(pool)
        if counts is None:
            counts = self.latency[pool] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.latency_sum[pool] = 0.0
        counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum[pool] += seconds

    def upstream_error(self, pool: str, kind: str) -> None:
        key = (pool, kind)
        self.upstream_errors[key] = self.upstream_errors.get(key, 0) + 1

    def client_error(self, kind: str) -> None:
        self.client_errors[kind] = self.client_errors.get(kind, 0) + 1


class ProxyCollector:
    """Registers once; reads the stats, pools and rate limiter at every scrape."""

    def __init__(
        self,
        stats: ProxyStats,
        pools: Callable[[], Mapping[str, Pool]],
        rate_limiter: RateLimiter,
        monotonic: Callable[[], float],
    ) -> None:
        self.stats = stats
        self.pools = pools
        self.rate_limiter = rate_limiter
        self.monotonic = monotonic

    def describe(self) -> Iterable[Metric]:
        return []  # collected lazily; nothing to check against at registration

    def collect(self) -> Iterable[Metric]:
        stats = self.stats
        responses = CounterMetricFamily(
            "reelscale_edge_proxy_responses",
            "Responses sent to clients, by pool and status.",
            labels=["pool", "status"],
        )
        for (pool, status), count in sorted(stats.responses.items()):
            responses.add_metric([pool, str(status)], count)
        yield responses
        latency = HistogramMetricFamily(
            "reelscale_edge_proxy_request_duration_seconds",
            "From the request head to the response's last byte, by pool.",
            labels=["pool"],
        )
        for pool, counts in sorted(stats.latency.items()):
            running, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                running += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), running))
            latency.add_metric([pool], buckets, stats.latency_sum[pool])
        yield latency
        yield _labelled(
            "reelscale_edge_proxy_upstream_errors",
            "Failed upstream attempts, by pool and kind (connect, reset, garbage, timeout).",
            ["pool", "kind"],
            {(pool, kind): count for (pool, kind), count in stats.upstream_errors.items()},
        )
        yield _labelled(
            "reelscale_edge_proxy_client_errors",
            "Client connections refused or closed for misbehaving, by kind.",
            ["kind"],
            {(kind,): count for kind, count in stats.client_errors.items()},
        )
        yield GaugeMetricFamily(
            "reelscale_edge_proxy_client_connections",
            "Client connections open now.",
            value=stats.connections_open,
        )
        yield from self._pools()
        yield _labelled(
            "reelscale_edge_rate_limited",
            "Requests refused by a rate limit, by limit name.",
            ["limit"],
            {(name,): count for name, count in self.rate_limiter.refused.items()},
        )

    def _pools(self) -> Iterable[Metric]:
        now = self.monotonic()
        retries = CounterMetricFamily(
            "reelscale_edge_proxy_retries", "Retries sent, by pool.", labels=["pool"]
        )
        exhausted = CounterMetricFamily(
            "reelscale_edge_proxy_retry_budget_exhausted",
            "Retries refused because the pool's budget was spent.",
            labels=["pool"],
        )
        ejections = CounterMetricFamily(
            "reelscale_edge_proxy_ejections",
            "Outlier ejections, by pool and instance.",
            labels=["pool", "instance"],
        )
        ejected = GaugeMetricFamily(
            "reelscale_edge_proxy_instance_ejected",
            "1 while an instance is ejected.",
            labels=["pool", "instance"],
        )
        outstanding = GaugeMetricFamily(
            "reelscale_edge_proxy_outstanding",
            "Requests outstanding on each instance.",
            labels=["pool", "instance"],
        )
        for name, pool in sorted(self.pools().items()):
            retries.add_metric([name], pool.budget.retries)
            exhausted.add_metric([name], pool.budget.exhausted)
            for instance in pool.instances:
                labels = [name, instance.origin.authority]
                ejections.add_metric(labels, instance.times_ejected)
                ejected.add_metric(labels, 0 if instance.available(now) else 1)
                outstanding.add_metric(labels, instance.outstanding)
        yield from (retries, exhausted, ejections, ejected, outstanding)


def _labelled(
    name: str, documentation: str, labels: list[str], values: Mapping[tuple[str, ...], int]
) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, count in sorted(values.items()):
        family.add_metric(list(key), count)
    return family
