"""The edge's lifecycle service: builds the parts, runs the utilisation sampler.

`EdgeRuntime.from_settings` is how `create_app` builds it from `REELSCALE_EDGE_*`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from reelscale.core.clock import Clock, SystemClock
from reelscale.core.identity import TokenVerifier
from reelscale.core.identity_headers import IdentityHeaders
from reelscale.core.lifecycle import Service
from reelscale.core.settings import Settings
from reelscale.edge.adaptive import AdaptiveLimit, AdaptiveSettings
from reelscale.edge.forwarded import TrustedProxies
from reelscale.edge.identity import EdgeAuthenticator
from reelscale.edge.limiter import PriorityLimiter
from reelscale.edge.priority import DEFAULT_RULES, Classifier, Priority, Rule
from reelscale.edge.ratelimit import (
    DEFAULT_RATE_LIMITS,
    BucketStore,
    MemoryBucketStore,
    RateLimit,
    RateLimiter,
    RedisBucketStore,
    TokenBucket,
)
from reelscale.edge.utilisation import SheddingThresholds, UtilisationMonitor


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
        utilisation_shedding: bool = True,
        authenticator: EdgeAuthenticator | None = None,
        trusted_proxies: TrustedProxies | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.classifier = Classifier(rules=rules)
        self.authenticator = authenticator
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        never = SheddingThresholds(cpu=None, loop_lag_s=None)
        self.utilisation = UtilisationMonitor(
            clock=clock,
            thresholds=None if utilisation_shedding else dict.fromkeys(Priority, never),
        )
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

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        registry: CollectorRegistry,
        verifier: TokenVerifier,
        identity_headers: IdentityHeaders,
    ) -> EdgeRuntime:
        """The edge of one platform process, configured by `REELSCALE_EDGE_*`.

        Latency, CPU and token refill are physical, so the edge runs on the system clock
        whatever clock the platform was given (a test's fake clock would freeze the
        limiter's windows and the buckets). Tokens are checked at the edge unless
        `require_edge_identity` says another edge in front has done it."""
        authenticator = None
        if not settings.require_edge_identity:
            authenticator = EdgeAuthenticator(verifier=verifier, identity_headers=identity_headers)
        return cls(
            clock=SystemClock(),
            registry=registry,
            redis_url=settings.redis_url,
            rules=(*settings.edge_rules, *DEFAULT_RULES),
            rate_limits=rate_limits_from(settings),
            adaptive=AdaptiveSettings(
                initial_limit=max(20, settings.edge_limit_min),
                min_limit=settings.edge_limit_min,
                max_limit=settings.edge_limit_max,
            ),
            critical_wait_s=settings.edge_critical_wait_s,
            utilisation_shedding=settings.edge_utilisation_shedding,
            authenticator=authenticator,
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
        )

    def middleware_options(self) -> dict[str, Any]:
        """Keyword arguments for `app.add_middleware(EdgeMiddleware, ...)`."""
        return {
            "classifier": self.classifier,
            "limiter": self.limiter,
            "rate_limiter": self.rate_limiter,
            "authenticator": self.authenticator,
            "trusted_proxies": self.trusted_proxies,
        }

    async def on_stop(self) -> None:
        await self.rate_limiter.store.aclose()


def rate_limits_from(settings: Settings) -> tuple[RateLimit, ...]:
    """The default rate-limit families (ratelimit.DEFAULT_RATE_LIMITS) at the set rates."""
    return (
        RateLimit(
            "address",
            TokenBucket(settings.edge_address_rate_per_s, settings.edge_address_burst),
            keyed_by="address",
        ),
        RateLimit(
            "member",
            TokenBucket(settings.edge_member_rate_per_s, settings.edge_member_burst),
            keyed_by="member",
        ),
        RateLimit(
            "login",
            TokenBucket(settings.edge_auth_rate_per_s, settings.edge_auth_burst),
            keyed_by="address",
            path="/v1/auth/**",
            methods=frozenset({"POST"}),
        ),
    )
