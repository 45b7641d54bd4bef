"""Client addresses behind trusted proxies: X-Forwarded-For, believed only from them.

Unit tests of the walk (edge/forwarded.py), then the same rule in both edges: the ASGI
middleware (through httpx.ASGITransport, which lets the test choose the TCP peer) and the
standalone proxy (on loopback, where the peer is 127.0.0.1 and the trusted networks decide
whether it is a proxy of ours).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reelscale.app import create_app
from reelscale.core.clock import FakeClock
from reelscale.core.settings import Settings
from reelscale.edge.adaptive import AdaptiveLimit, AdaptiveSettings
from reelscale.edge.forwarded import MAX_FORWARDED_HOPS, TrustedProxies, parse_address
from reelscale.edge.limiter import PriorityLimiter
from reelscale.edge.middleware import EdgeMiddleware
from reelscale.edge.priority import Classifier
from reelscale.edge.proxy.config import EdgeSettings
from reelscale.edge.proxy.server import ProxyServer
from reelscale.edge.ratelimit import MemoryBucketStore, RateLimit, RateLimiter, TokenBucket
from tests.conftest import make_settings, server_unreachable
from tests.edge.test_proxy import ScriptedOrigin, ok, origins
from tests.edge.test_proxy_redis import REDIS_URL

LB = "10.0.0.1"  # a load balancer of ours
LB_NETWORKS = ["10.0.0.0/8", "2001:db8:ff::/48"]

# --------------------------------------------------------------------------- the walk


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        # Nobody trusted: the peer, whatever the header says.
        ("198.51.100.1", "203.0.113.5", "198.51.100.1"),
        # A trusted peer speaks for its client.
        (LB, "203.0.113.5", "203.0.113.5"),
        (LB, " 203.0.113.5 ", "203.0.113.5"),
        # Chains: trusted hops are skipped right to left; the first untrusted is the client,
        # and what the client wrote left of it is ignored.
        (LB, "198.51.100.66, 203.0.113.5, 10.1.2.3", "203.0.113.5"),
        (LB, "1.1.1.1,2.2.2.2", "2.2.2.2"),
        # Every hop ours: the leftmost.
        (LB, "10.9.9.9, 10.1.1.1", "10.9.9.9"),
        # IPv6, bracketed or not, with ports, and IPv4-mapped.
        (LB, "2001:db8::7", "2001:db8::7"),
        (LB, "[2001:DB8::7]:443", "2001:db8::7"),
        (LB, "203.0.113.5:51234", "203.0.113.5"),
        (LB, "::ffff:203.0.113.5", "203.0.113.5"),
        ("2001:db8:ff::1", "2001:db8::9", "2001:db8::9"),
        ("::ffff:10.0.0.1", "203.0.113.5", "203.0.113.5"),
        # Garbage where the walk reads it: the peer, never an error.
        (LB, "", LB),
        (LB, "unknown", LB),
        (LB, "203.0.113.5, not-an-ip", LB),
        (LB, "203.0.113.5,,", LB),
        (LB, "[2001:db8::7", LB),
        (LB, "203.0.113.5\x00", LB),
        (LB, "1.2.3.4.5", LB),
        (LB, "999.1.1.1", LB),
        # Garbage the walk never reaches (left of the client) does not matter.
        (LB, "not-an-ip, 203.0.113.5", "203.0.113.5"),
        # Oversized: the peer.
        (LB, "203.0.113.5, " * 300 + "203.0.113.5", LB),
        (LB, ",".join(["10.0.0.2"] * (MAX_FORWARDED_HOPS + 1)), LB),
    ],
)
def test_client_address_walks_right_to_left_from_a_trusted_peer(
    peer: str, header: str, client: str
) -> None:
    trusted = TrustedProxies(LB_NETWORKS)
    assert trusted.client_address(peer, header) == client


def test_nobody_is_trusted_by_default_and_a_missing_header_is_the_peer() -> None:
    assert TrustedProxies().client_address(LB, "203.0.113.5") == LB
    assert not TrustedProxies()
    assert TrustedProxies(LB_NETWORKS).client_address(LB, None) == LB


def test_the_chain_sent_upstream_holds_only_what_can_be_vouched_for() -> None:
    trusted = TrustedProxies(LB_NETWORKS)
    spoofed = "198.51.100.66, 203.0.113.5, 10.1.2.3"
    assert trusted.chain(LB, spoofed) == ["203.0.113.5", "10.1.2.3", LB]
    assert trusted.chain("198.51.100.1", spoofed) == ["198.51.100.1"]
    assert trusted.chain(LB, "junk") == [LB]


def test_parse_address_accepts_what_proxies_write_and_nothing_else() -> None:
    assert str(parse_address("[::1]")) == "::1"
    assert parse_address("::1") is not None
    for bad in ("", " ", "[", "[]", "host.example", "1.2.3", "01.2.3.4", "::g", "a:b:c"):
        assert parse_address(bad) is None, bad


def test_bad_cidrs_are_refused_with_the_entry_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        TrustedProxies(["10.0.0.0/33"])
    with pytest.raises(ValidationError, match="not an IP address or CIDR"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.internal")  # type: ignore[arg-type]
    settings = Settings(trusted_proxies="10.0.0.0/8, ::1")  # type: ignore[arg-type]
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")
    assert Settings().trusted_proxies == ()


# --------------------------------------------------------------------------- the middleware


def middleware(peer: str, trusted: list[str]) -> httpx.AsyncClient:
    """An edge allowing 2 requests per client address, in front of a route that says who
    it thinks the client is."""

    async def who(request: Request) -> JSONResponse:
        return JSONResponse({"client": request.client.host if request.client else None})

    limiter = PriorityLimiter(
        clock=FakeClock(),
        adaptive=AdaptiveLimit(
            settings=AdaptiveSettings(initial_limit=50, min_limit=50, max_limit=50)
        ),
    )
    per_address = RateLimit("address", TokenBucket(0.001, 2), keyed_by="address")
    app = EdgeMiddleware(
        Starlette(routes=[Route("/who", who)]),
        classifier=Classifier(rules=["* /** => DEGRADED"]),
        limiter=limiter,
        rate_limiter=RateLimiter(limits=[per_address], store=MemoryBucketStore(clock=FakeClock())),
        trusted_proxies=TrustedProxies(trusted),
    )
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://edge")


async def statuses(http: httpx.AsyncClient, count: int, **headers: str) -> list[int]:
    return [(await http.get("/who", headers=headers)).status_code for _ in range(count)]


async def test_clients_behind_a_trusted_proxy_get_their_own_buckets() -> None:
    async with middleware(LB, LB_NETWORKS) as http:
        first = {"X-Forwarded-For": "203.0.113.1"}
        answer = await http.get("/who", headers=first)
        assert answer.json() == {"client": "203.0.113.1"}  # routes see the real client
        assert await statuses(http, 2, **first) == [200, 429]
        # Another client behind the same balancer is not throttled by the first.
        assert await statuses(http, 3, **{"X-Forwarded-For": "203.0.113.2"}) == [200, 200, 429]
        # Two header lines are one list: the last entry is the balancer's.
        line = await http.get(
            "/who", headers=[("X-Forwarded-For", "203.0.113.1"), ("X-Forwarded-For", "203.0.113.3")]
        )
        assert line.json() == {"client": "203.0.113.3"}
        # A garbage header is the balancer's own address: served, never a 500.
        garbage = await http.get("/who", headers={"X-Forwarded-For": b"\xff, nonsense"})
        assert garbage.json() == {"client": LB}


async def test_an_untrusted_peer_cannot_choose_its_bucket() -> None:
    async with middleware("198.51.100.1", LB_NETWORKS) as http:
        spoofs = [f"203.0.113.{n}" for n in range(1, 5)]
        seen = [await http.get("/who", headers={"X-Forwarded-For": s}) for s in spoofs]
    assert [r.status_code for r in seen] == [200, 200, 429, 429]
    assert seen[0].json() == {"client": "198.51.100.1"}


# --------------------------------------------------------------------------- the proxy


@contextlib.asynccontextmanager
async def proxy_with(
    trusted: list[str], **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedOrigin]]:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "timer_resolution_s": 0.02,
        "address_rate_per_s": 0.001,
        "address_burst": 2,
        "limit_initial": 200,
        "limit_min": 200,
        "limit_max": 200,
        "shutdown_grace_s": 1.0,
        "utilisation_shedding": False,
    }
    values.update(settings)
    async with origins(ok) as (origin,):
        proxy = ProxyServer(
            EdgeSettings(upstreams=f"default={origin.url}", **values),
            trusted_proxies=TrustedProxies(trusted),
        )
        await proxy.start()
        try:
            async with httpx.AsyncClient(base_url=proxy.url) as http:
                yield http, origin
        finally:
            await proxy.stop()


async def test_the_proxy_keys_clients_behind_a_trusted_proxy_apart() -> None:
    # The test client is 127.0.0.1: here it plays a load balancer the edge trusts, and
    # every request shares its one kept-alive connection.
    async with proxy_with(["127.0.0.0/8"]) as (http, origin):
        one = {"X-Forwarded-For": "198.51.100.66, 203.0.113.1"}  # the client wrote the first
        two = {"X-Forwarded-For": "203.0.113.2"}
        assert await statuses(http, 3, **one) == [200, 200, 429]
        assert await statuses(http, 2, **two) == [200, 200]
        assert (await http.get("/x", headers={"X-Forwarded-For": "junk"})).status_code == 200
        assert (await http.get("/x")).status_code == 200  # the balancer's own bucket
        assert (await http.get("/x")).status_code == 429
    forwarded = [seen.headers["x-forwarded-for"] for seen in origin.seen]
    # Upstream goes only what can be vouched for, with the balancer appended.
    assert forwarded == [
        "203.0.113.1, 127.0.0.1",
        "203.0.113.1, 127.0.0.1",
        "203.0.113.2, 127.0.0.1",
        "203.0.113.2, 127.0.0.1",
        "127.0.0.1",
        "127.0.0.1",
    ]


async def test_the_proxy_ignores_x_forwarded_for_from_an_untrusted_peer() -> None:
    async with proxy_with(["10.0.0.0/8"]) as (http, origin):
        spoofs = [f"203.0.113.{n}" for n in range(1, 5)]
        seen = [(await http.get("/x", headers={"X-Forwarded-For": s})).status_code for s in spoofs]
    assert seen == [200, 200, 429, 429]
    assert [s.headers["x-forwarded-for"] for s in origin.seen] == ["127.0.0.1", "127.0.0.1"]


def test_the_platform_app_passes_the_setting_to_its_edge(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, trusted_proxies=("10.0.0.0/8",)))
    options = app.state.edge.middleware_options()
    assert options["trusted_proxies"].trusts("10.1.2.3")
    assert not options["trusted_proxies"].trusts("127.0.0.1")
    untrusting = create_app(make_settings(tmp_path)).state.edge.middleware_options()
    assert not untrusting["trusted_proxies"]


async def test_shared_buckets_in_redis_key_on_the_forwarded_client_too() -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        server_unreachable(f"Redis at {REDIS_URL}", exc)
    run = uuid.uuid4().int
    one, two = (f"2001:db8:{run % 65536:x}::{n}" for n in (1, 2))
    keys = [f"{{reelscale:ratelimit}}:address:{a}" for a in (one, two, "127.0.0.1")]
    try:
        async with proxy_with(["127.0.0.0/8"], redis_url=REDIS_URL) as (http, origin):
            assert await statuses(http, 3, **{"X-Forwarded-For": one}) == [200, 200, 429]
            assert await statuses(http, 2, **{"X-Forwarded-For": two}) == [200, 200]
        assert [s.headers["x-forwarded-for"] for s in origin.seen] == [
            f"{one}, 127.0.0.1",
            f"{one}, 127.0.0.1",
            f"{two}, 127.0.0.1",
            f"{two}, 127.0.0.1",
        ]
    finally:
        await client.delete(*keys)
        await client.aclose()
