"""The proxy's shared state (`Proxy`) and its lifecycle (`ProxyServer`).

`Proxy` is what every connection and exchange reads on the request path: the settings they
need as plain attributes, the edge runtime's classifier, limiter and rate limiter, the
router, the pools and the upstream connections. `ProxyServer` listens, runs the timer
sweep that enforces every deadline (one pass over the connections per tick is far cheaper
than a timer per request), follows membership changes, and shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Coroutine, Mapping
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from reelscale.core.clock import Clock, SystemClock
from reelscale.core.identity_headers import IDENTITY_HEADER_BYTES
from reelscale.edge.forwarded import TrustedProxies
from reelscale.edge.proxy import http1
from reelscale.edge.proxy.auth import JWKS_PATH, EdgeTrust, ProxyAuth
from reelscale.edge.proxy.balancer import EjectionPolicy, Pool
from reelscale.edge.proxy.classify import CompiledClassifier
from reelscale.edge.proxy.config import EdgeSettings
from reelscale.edge.proxy.downstream import ClientConnection
from reelscale.edge.proxy.exchange import Exchange
from reelscale.edge.proxy.metrics import ProxyCollector, ProxyStats
from reelscale.edge.proxy.retry import RetryBudget
from reelscale.edge.proxy.revocations import RevocationFeed, RevocationFollower
from reelscale.edge.proxy.routing import Router
from reelscale.edge.proxy.upstream import UpstreamConnections
from reelscale.edge.proxy.upstreams import Membership, StaticUpstreams, Upstreams
from reelscale.edge.ratelimit import (
    ALLOWED,
    DEFAULT_RATE_LIMITS,
    Decision,
    MemoryBucketStore,
    RateLimit,
    TokenBucket,
)
from reelscale.edge.runtime import EdgeRuntime

log = logging.getLogger("reelscale.edge.proxy")
_HEALTHY = orjson.dumps({"status": "ok"})
_MAX_METHODS = 64  # per-method caches stay bounded whatever methods clients invent


def rate_limits_for(settings: EdgeSettings) -> tuple[RateLimit, ...]:
    """The default limits, with the per-address and per-member buckets sized by settings."""
    address = TokenBucket(rate_per_s=settings.address_rate_per_s, burst=settings.address_burst)
    member = TokenBucket(rate_per_s=settings.member_rate_per_s, burst=settings.member_burst)
    sized = {
        "address": RateLimit("address", address, keyed_by="address"),
        "member": RateLimit("member", member, keyed_by="member"),
    }
    return tuple(sized.get(limit.name, limit) for limit in DEFAULT_RATE_LIMITS)


class Proxy:
    """Everything the request path shares."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        runtime: EdgeRuntime,
        upstreams: Upstreams,
        clock: Clock,
        registry: CollectorRegistry,
        trust: EdgeTrust | None = None,
        trusted_proxies: TrustedProxies | None = None,
    ) -> None:
        s = settings
        self.settings = settings
        self.header_timeout_s = s.header_timeout_s
        self.keepalive_timeout_s = s.keepalive_timeout_s
        self.body_timeout_s = s.body_timeout_s
        self.max_header_bytes = s.max_header_bytes
        self.max_headers = s.max_headers
        self.max_url_bytes = s.max_url_bytes
        self.max_body_bytes = s.max_body_bytes
        self.max_connections = s.max_connections
        self.first_byte_timeout_s = s.first_byte_timeout_s
        self.idle_timeout_s = s.idle_timeout_s
        self.total_timeout_s = s.total_timeout_s
        self.retry_body_max_bytes = s.retry_body_max_bytes
        self.forwarded_proto = s.forwarded_proto.encode()
        # Peers whose X-Forwarded-For names the client (REELSCALE_TRUSTED_PROXIES).
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        self.clock = clock
        self.registry = registry
        self.classifier = CompiledClassifier(runtime.classifier)
        self.limiter = runtime.limiter
        self.rate_limiter = runtime.rate_limiter
        store = self.rate_limiter.store
        self.memory_store = store if isinstance(store, MemoryBucketStore) else None
        # Limits by address that apply to every request are keyed once per connection;
        # per-member ones once the token is verified; the others are checked per request.
        limits = self.rate_limiter.limits
        every = [x for x in limits if x.path is None and x.methods is None]
        self._every_request = [x for x in every if x.keyed_by != "member"]
        self._member = [x for x in every if x.keyed_by == "member"]
        self._conditional = [x for x in limits if x.path is not None or x.methods is not None]
        # The conditional limits a method can meet, worked out once per method: a GET meets
        # none of the defaults (login is POST only), so its check builds no list at all.
        self._conditional_by_method: dict[str, list[RateLimit]] = {}
        # Token verification and the signed identity header (None: tokens are not checked
        # here; `reelscale serve --roles edge` always checks them, see main.py).
        self.auth: ProxyAuth | None = None
        if trust is not None:
            self.auth = ProxyAuth(
                trust,
                clock=clock,
                jwks_instances=self._jwks_instances,
                cache_size=s.token_cache_size,
                cache_ttl_s=s.token_cache_ttl_s,
            )
        # Headers never forwarded as the client sent them: hop-by-hop, the ones the proxy
        # writes itself, any identity header (only the edge speaks it) and, when the edge
        # verifies tokens, Authorization (it forwards the one header it verified).
        self.dropped_headers = http1.HOP_BY_HOP | http1.REPLACED_UPSTREAM | {IDENTITY_HEADER_BYTES}
        if self.auth is not None:
            self.dropped_headers |= {b"authorization"}
        # Headers the request path reads while parsing; the rest pass through untouched.
        self.special_headers = (
            self.dropped_headers
            | http1.READ_UPSTREAM
            | frozenset(name.encode("latin-1") for name in self.classifier.header_names)
        )
        self.router = Router(s.route_table)
        self.policy = EjectionPolicy(
            consecutive_failures=s.eject_consecutive_failures,
            base_s=s.eject_base_s,
            max_s=s.eject_max_s,
            max_percent=s.eject_max_percent,
        )
        self.pools: dict[str, Pool] = {}
        self.upstreams = upstreams
        self.apply(upstreams.current())
        self.connections = UpstreamConnections(
            connect_timeout_s=s.connect_timeout_s,
            idle_timeout_s=s.pool_idle_timeout_s,
            max_idle=s.max_idle_per_instance,
        )
        self.stats = ProxyStats()
        self.request_ids = http1.RequestIds()
        self.clients: set[ClientConnection] = set()
        self.local_paths = frozenset({"/healthz", "/metrics"})
        self._background: set[asyncio.Task[None]] = set()
        registry.register(
            ProxyCollector(self.stats, lambda: self.pools, self.rate_limiter, clock.monotonic)
        )

    def apply(self, membership: Membership) -> None:
        """Adopt a pool membership (at start, and whenever discovery says it changed)."""
        s = self.settings
        for name, origins in membership.items():
            pool = self.pools.get(name)
            if pool is None:
                budget = RetryBudget(ratio=s.retry_budget_ratio, burst=s.retry_budget_burst)
                self.pools[name] = Pool(
                    name, origins, policy=self.policy, budget=budget, monotonic=self.clock.monotonic
                )
            else:
                pool.set_origins(origins)
        for name in set(self.pools) - set(membership) - {"default"}:
            del self.pools[name]  # its routes fall back to default (see pool_for)

    def pool_for(self, path: str) -> Pool:
        return self.pools.get(self.router.pool_for(path)) or self.pools["default"]

    def _jwks_instances(self) -> list[str]:
        """Base URLs of the pool serving the JWKS, available instances first."""
        now = self.clock.monotonic()
        instances = sorted(self.pool_for(JWKS_PATH).instances, key=lambda i: not i.available(now))
        return [f"http://{instance.origin.authority}" for instance in instances]

    def address_buckets(self, address: str) -> list[tuple[str, TokenBucket]]:
        """The buckets every request from this address takes from (one list per connection)."""
        return [
            (key, limit.bucket)
            for limit in self._every_request
            if (key := limit.key(member=None, address=address)) is not None
        ]

    def check_rate_now(
        self,
        method: str,
        path: str,
        client: ClientConnection,
        member: str | None = None,
        address: str | None = None,
    ) -> Decision | None:
        """The rate-limit decision now when buckets are in memory; None when it needs I/O.

        This is `RateLimiter.check` without the await, so an in-memory check costs no task.
        `member` is the verified token's subject (None: no per-member limit applies);
        `address` the client a trusted proxy forwarded for (None: the connection's peer)."""
        store = self.memory_store
        if store is None:
            return None
        if address is None:
            address = client.address
            buckets = client.rate_buckets
        else:
            buckets = client.buckets_for(address)
        if member is not None and self._member:
            buckets = buckets + [
                (key, limit.bucket)
                for limit in self._member
                if (key := limit.key(member=member, address=None)) is not None
            ]
        conditional = self._conditional_by_method.get(method)
        if conditional is None:
            conditional = [x for x in self._conditional if x.methods is None or method in x.methods]
            if len(self._conditional_by_method) < _MAX_METHODS:
                self._conditional_by_method[method] = conditional
        if conditional:
            extra = [
                (key, limit.bucket)
                for limit in conditional
                if limit.applies(method, path)
                and (key := limit.key(member=member, address=address)) is not None
            ]
            if extra:
                buckets = buckets + extra
        if not buckets:
            return ALLOWED
        decision = store.take_now(buckets, cost=1.0)
        if decision.allowed:
            return decision
        name = (decision.limit or "").split(":", 1)[0]
        self.rate_limiter.refused[name] += 1
        return Decision(False, math.ceil(max(decision.retry_after_s, 1.0)), name)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def serve_local(self, exchange: Exchange) -> None:
        """/healthz and /metrics are the proxy's own, never forwarded."""
        head_only = exchange.method == b"HEAD"
        if exchange.method not in (b"GET", b"HEAD"):
            exchange.respond(
                405,
                http1.problem(
                    405,
                    "Only GET and HEAD are allowed here.",
                    instance=exchange.path,
                    request_id=exchange.request_id,
                    close=not exchange.request_done,
                ),
                close=not exchange.request_done,
            )
            return
        if exchange.path == "/metrics":
            body = generate_latest(self.registry)
            content_type = CONTENT_TYPE_LATEST.encode()
        else:
            body, content_type = _HEALTHY, b"application/json"
        close = not exchange.keep_alive
        exchange.respond(
            200,
            http1.response(
                200,
                body,
                content_type=content_type,
                request_id=exchange.request_id,
                close=close,
                head_only=head_only,
            ),
            close=close,
        )

    def cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()


class ProxyServer:
    """Listens, sweeps deadlines, follows membership; `start()` then `stop()`."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        upstreams: Upstreams | None = None,
        trust: EdgeTrust | None = None,
        trusted_proxies: TrustedProxies | None = None,
        revocations: RevocationFeed | None = None,
    ) -> None:
        """`trust` None runs without token checks (for tests of the proxy's other parts);
        `reelscale serve --roles edge` always passes one (main.py). `revocations` is the
        event stream that tells the proxy of sign-outs (revocations.py)."""
        self.settings = settings
        clock = clock or SystemClock()
        registry = registry or CollectorRegistry()
        self.runtime = EdgeRuntime(
            clock=clock,
            registry=registry,
            redis_url=settings.redis_url,
            rate_limits=rate_limits_for(settings),
            adaptive=settings.adaptive(),
        )
        if not settings.utilisation_shedding:
            self.runtime.utilisation.thresholds = {}
        self.proxy = Proxy(
            settings,
            runtime=self.runtime,
            upstreams=upstreams or StaticUpstreams(settings.pools),
            clock=clock,
            registry=registry,
            trust=trust,
            trusted_proxies=trusted_proxies,
        )
        self.revocations: RevocationFollower | None = None
        if revocations is not None and self.proxy.auth is not None:
            self.revocations = RevocationFollower(revocations, auth=self.proxy.auth, clock=clock)
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    async def start(self) -> None:
        await self.runtime.start()
        if self.revocations is not None:
            await self.revocations.start()  # follows in the background: never blocks here
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        self._server = await loop.create_server(
            lambda: ClientConnection(proxy),
            self.settings.host,
            self.settings.port,
            reuse_port=self.settings.reuse_port or None,
            backlog=4096,
        )
        self._tasks = [
            loop.create_task(self._sweep(), name="edge.proxy.sweep"),
            loop.create_task(self._follow_membership(), name="edge.proxy.membership"),
        ]
        log.info(
            "edge proxy listening",
            extra={
                "url": self.url,
                "pools": sorted(proxy.settings.pools),
                "verifies_tokens": proxy.auth is not None,
                "follows_revocations": self.revocations is not None,
                "trusted_proxies": [str(n) for n in proxy.trusted_proxies.networks],
            },
        )

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop accepting, let exchanges in flight finish (up to the grace), then close."""
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        proxy = self.proxy
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + grace
        while True:
            for client in list(proxy.clients):
                if client.current is None and client.receiving is None:
                    client.close()
            if not proxy.clients or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        for client in list(proxy.clients):
            client.shut()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        proxy.cancel_background()
        proxy.connections.close_all()
        if self.revocations is not None:
            await self.revocations.stop()
        if proxy.auth is not None:
            await proxy.auth.aclose()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await self.runtime.stop()

    async def _sweep(self) -> None:
        proxy = self.proxy
        interval = self.settings.timer_resolution_s
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for client in list(proxy.clients):
                client.check(now)
            proxy.connections.sweep(now)

    async def _follow_membership(self) -> None:
        async for membership in self.proxy.upstreams.changes():
            self.proxy.apply(membership)


def pools_summary(pools: Mapping[str, Pool]) -> dict[str, list[str]]:
    """Pool name to instance authorities, for logs and the bench."""
    return {name: [i.origin.authority for i in pool.instances] for name, pool in pools.items()}
