"""The edge's lifecycle service: builds the parts, runs the utilisation sampler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from reelscale.core.clock import Clock
from reelscale.core.lifecycle import Service
from reelscale.edge.adaptive import AdaptiveLimit, AdaptiveSettings
from reelscale.edge.limiter import PriorityLimiter
from reelscale.edge.priority import Classifier, Rule
from reelscale.edge.ratelimit import (
    DEFAULT_RATE_LIMITS,
    BucketStore,
    MemoryBucketStore,
    RateLimit,
    RateLimiter,
    RedisBucketStore,
)
from reelscale.edge.utilisation import UtilisationMonitor


class EdgeRuntime(Service):
    """Owns the classifier, limiter and rate limiter of one process.

    `redis_url` None keeps rate-limit buckets in memory (the embedded default)."""

    name = "edge"

    def __init__(
        self,
        *,
        clock: Clock,
        registry: CollectorRegistry,
        redis_url: str | None = None,
        rules: Sequence[Rule | str] | None = None,
        rate_limits: Sequence[RateLimit] = DEFAULT_RATE_LIMITS,
        adaptive: AdaptiveSettings | None = None,
        critical_wait_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.classifier = Classifier(rules=rules)
        self.utilisation = UtilisationMonitor(clock=clock)
        self.limiter = PriorityLimiter(
            clock=clock,
            adaptive=AdaptiveLimit(settings=adaptive, seed=seed),
            utilisation=self.utilisation,
            registry=registry,
            critical_wait_s=critical_wait_s,
        )
        store: BucketStore = (
            RedisBucketStore(url=redis_url) if redis_url else MemoryBucketStore(clock=clock)
        )
        self.rate_limiter = RateLimiter(limits=rate_limits, store=store)
        self.supervise("utilisation", self.utilisation.run)

    def middleware_options(self) -> dict[str, Any]:
        """Keyword arguments for `app.add_middleware(EdgeMiddleware, ...)`."""
        return {
            "classifier": self.classifier,
            "limiter": self.limiter,
            "rate_limiter": self.rate_limiter,
        }

    async def on_stop(self) -> None:
        await self.rate_limiter.store.aclose()
