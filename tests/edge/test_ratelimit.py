"""Token buckets: the memory store on a fake clock, and Redis shared between edges.

Redis tests use the server at REELSCALE_TEST_REDIS_URL (default 127.0.0.1:6379). Outside
CI they skip, with the reason, when it is unreachable; with CI=true they fail.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from reelscale.core.clock import FakeClock
from reelscale.edge.limiter import PriorityLimiter
from reelscale.edge.middleware import EdgeMiddleware
from reelscale.edge.priority import Classifier
from reelscale.edge.ratelimit import (
    Decision,
    MemoryBucketStore,
    RateLimit,
    RateLimiter,
    RedisBucketStore,
    TokenBucket,
)
from tests.conftest import server_unreachable

REDIS_URL = os.environ.get("REELSCALE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

PER_ADDRESS = RateLimit("address", TokenBucket(rate_per_s=1, burst=5), keyed_by="address")
PER_MEMBER = RateLimit("member", TokenBucket(rate_per_s=1, burst=3), keyed_by="member")
SEARCH_ROUTE = RateLimit(
    "search", TokenBucket(rate_per_s=2, burst=2), keyed_by="route", path="/v1/catalog/search"
)


async def test_memory_bucket_refills_at_its_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(limits=[PER_ADDRESS], store=MemoryBucketStore(clock=clock))

    async def check() -> bool:
        decision = await limiter.check(method="GET", path="/x", member=None, address="a")
        return decision.allowed

    assert [await check() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(0.5)
    assert not await check()
    clock.advance(0.5)
    assert await check()
    clock.advance(100)  # refills to the burst, never beyond it
    assert [await check() for _ in range(6)] == [True] * 5 + [False]
    assert limiter.refused["address"] == 3


async def test_buckets_are_taken_all_or_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        limits=[PER_ADDRESS, PER_MEMBER, SEARCH_ROUTE], store=MemoryBucketStore(clock=clock)
    )

    async def search(member: str | None) -> bool:
        decision = await limiter.check(
            method="GET", path="/v1/catalog/search", member=member, address="a"
        )
        return decision.allowed

    assert await search("m1")
    assert await search("m1")
    refused = await limiter.check(method="GET", path="/v1/catalog/search", member="m1", address="a")
    assert not refused.allowed
    assert refused.limit == "search"
    assert refused.retry_after_s >= 1
    # The refused search took nothing from the member's or the address's buckets.
    other = await limiter.check(method="GET", path="/v1/catalog/titles", member="m1", address="a")
    assert other.allowed
    third = await limiter.check(method="GET", path="/v1/catalog/titles", member="m1", address="a")
    assert not third.allowed
    assert third.limit == "member"
    # An anonymous request has no member bucket, only the address's.
    assert (await limiter.check(method="GET", path="/x", member=None, address="a")).allowed


def test_one_bucket_takes_and_refuses_exactly_as_in_company() -> None:
    """A lone bucket has its own short path; it must answer as the general one does."""
    alone_clock, paired_clock = FakeClock(), FakeClock()
    alone = MemoryBucketStore(clock=alone_clock)
    paired = MemoryBucketStore(clock=paired_clock)
    bucket = TokenBucket(rate_per_s=2, burst=3)
    roomy = TokenBucket(rate_per_s=1000, burst=1000)  # never the one that refuses
    answers: list[tuple[Decision, Decision]] = []
    for step in [0, 0, 0, 0, 0.2, 0.3, 0, 5, 0, 0, 0, 0, 0.1]:
        alone_clock.advance(step)
        paired_clock.advance(step)
        answers.append(
            (
                alone.take_now([("k", bucket)], cost=1.0),
                paired.take_now([("k", bucket), ("other", roomy)], cost=1.0),
            )
        )
    assert all(one == both for one, both in answers)
    assert [one.allowed for one, _ in answers] == [
        True,
        True,
        True,
        False,
        False,
        True,
        False,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_memory_store_forgets_least_recent_keys_beyond_its_bound() -> None:
    store = MemoryBucketStore(clock=FakeClock(), max_keys=3)
    bucket = TokenBucket(rate_per_s=1, burst=1)
    for key in "abcd":
        assert store.take_now([(key, bucket)], cost=1).allowed
    assert store.take_now([("a", bucket)], cost=1).allowed  # forgotten means full again
    assert not store.take_now([("d", bucket)], cost=1).allowed


def test_limits_refuse_bad_definitions() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(rate_per_s=0, burst=1)
    with pytest.raises(ValueError, match="':'"):
        RateLimit("a:b", TokenBucket(rate_per_s=1, burst=1), keyed_by="address")


@pytest_asyncio.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique key prefix on a reachable Redis; its keys are deleted afterwards."""
    prefix = f"reelscale-test:{uuid.uuid4().hex}"
    store = RedisBucketStore(url=REDIS_URL, prefix=prefix, timeout_s=2)
    try:
        await store.ping()
    except Exception as exc:
        await store.aclose()
        server_unreachable(f"Redis at {REDIS_URL}", exc)
    try:
        yield prefix
    finally:
        keys = [key async for key in store._redis.scan_iter(match=store.prefix + "*")]
        if keys:
            await store._redis.delete(*keys)
        await store.aclose()


def edge_app(*, prefix: str, limits: list[RateLimit]) -> tuple[EdgeMiddleware, RedisBucketStore]:
    async def hello(_request: Request) -> Response:
        return PlainTextResponse("hello")

    store = RedisBucketStore(url=REDIS_URL, prefix=prefix, timeout_s=2)
    app = EdgeMiddleware(
        Starlette(routes=[Route("/v1/catalog/titles", hello)]),
        classifier=Classifier(),
        limiter=PriorityLimiter(clock=FakeClock()),
        rate_limiter=RateLimiter(limits=limits, store=store),
    )
    return app, store


async def test_two_edges_share_one_limit_through_redis(redis_prefix: str) -> None:
    first, first_store = edge_app(prefix=redis_prefix, limits=[PER_ADDRESS])
    second, second_store = edge_app(prefix=redis_prefix, limits=[PER_ADDRESS])
    address = ("192.0.2.10", 1234)
    a = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first, client=address), base_url="http://a"
    )
    b = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=second, client=address), base_url="http://b"
    )
    try:
        statuses = []
        for client in (a, b, a, b, a, b, a):
            statuses.append((await client.get("/v1/catalog/titles")).status_code)
        # A burst of 5 across both edges, not 5 each.
        assert statuses == [200] * 5 + [429, 429]
        throttled = await b.get("/v1/catalog/titles")
        assert throttled.headers["content-type"] == "application/problem+json"
        assert int(throttled.headers["retry-after"]) >= 1
        # Another address has its own bucket.
        c_transport = httpx.ASGITransport(app=second, client=("192.0.2.11", 1))
        async with httpx.AsyncClient(transport=c_transport, base_url="http://c") as c:
            assert (await c.get("/v1/catalog/titles")).status_code == 200
    finally:
        await a.aclose()
        await b.aclose()
        await first_store.aclose()
        await second_store.aclose()


async def test_redis_keys_expire_once_the_bucket_would_be_full(redis_prefix: str) -> None:
    store = RedisBucketStore(url=REDIS_URL, prefix=redis_prefix, timeout_s=2)
    try:
        bucket = TokenBucket(rate_per_s=2, burst=10)  # empty to full in 5 s
        assert (await store.take([("k", bucket)], cost=1)).allowed
        ttl_ms = await store._redis.pttl(store.prefix + "k")
        assert 5000 < ttl_ms <= 6000
    finally:
        await store.aclose()


_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from reelscale.edge.ratelimit import RedisBucketStore, TokenBucket

    async def main() -> None:
        store = RedisBucketStore(url=sys.argv[1], prefix=sys.argv[2], timeout_s=2)
        bucket = TokenBucket(rate_per_s=0.001, burst=20)
        await store.ping()
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        allowed = 0
        for _ in range(15):
            allowed += (await store.take([("shared", bucket)], cost=1)).allowed
        print(allowed, flush=True)
        await store.aclose()

    asyncio.run(main())
    """
)


async def test_two_processes_share_one_limit(redis_prefix: str) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            REDIS_URL,
            redis_prefix,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout is not None
        assert (await asyncio.wait_for(process.stdout.readline(), 20)).strip() == b"ready"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    outputs = [await asyncio.wait_for(p.communicate(), 20) for p in processes]
    allowed = [int(out.strip()) for out, _ in outputs]
    assert sum(allowed) == 20, allowed  # 30 attempts against one bucket of 20


async def test_unreachable_redis_fails_open_and_counts() -> None:
    clock = FakeClock()
    store = RedisBucketStore(url="redis://127.0.0.1:1/0", timeout_s=0.2, clock=clock)
    try:
        limiter = RateLimiter(limits=[PER_ADDRESS], store=store)
        for _ in range(3):
            decision = await limiter.check(method="GET", path="/x", member=None, address="a")
            assert decision.allowed
        assert store.failures == 1  # after one failure, Redis is left alone for a second
        clock.advance(1.0)
        assert (await limiter.check(method="GET", path="/x", member=None, address="a")).allowed
        assert store.failures == 2
    finally:
        await store.aclose()
