"""The edge middleware in front of a small Starlette app, through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message

from reelscale.core.clock import FakeClock
from reelscale.edge.adaptive import AdaptiveLimit, AdaptiveSettings
from reelscale.edge.limiter import PriorityLimiter
from reelscale.edge.middleware import EdgeMiddleware
from reelscale.edge.priority import Classifier, Priority
from reelscale.edge.ratelimit import MemoryBucketStore, RateLimit, RateLimiter, TokenBucket

RULES = ["* /critical/** => CRITICAL", "* /bulk/** => BULK"]


@dataclass
class Edge:
    client: httpx.AsyncClient
    app: EdgeMiddleware
    limiter: PriorityLimiter
    gate: asyncio.Event
    clock: FakeClock


def build(*, limit: int = 10, rate_limits: list[RateLimit] | None = None) -> Edge:
    gate = asyncio.Event()
    clock = FakeClock()

    async def slow(_request: Request) -> Response:
        await gate.wait()
        return PlainTextResponse("slow")

    async def fast(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def overloaded(_request: Request) -> Response:
        return PlainTextResponse("busy", status_code=503)

    async def boom(_request: Request) -> Response:
        raise RuntimeError("bug")

    inner = Starlette(
        routes=[
            Route("/{kind}/slow", slow),
            Route("/{kind}/fast", fast),
            Route("/{kind}/busy", overloaded),
            Route("/{kind}/boom", boom),
            Route("/healthz", fast),
        ]
    )
    settings = AdaptiveSettings(initial_limit=limit, min_limit=limit, max_limit=limit)
    limiter = PriorityLimiter(clock=clock, adaptive=AdaptiveLimit(settings=settings))
    rate_limiter = (
        RateLimiter(limits=rate_limits, store=MemoryBucketStore(clock=clock))
        if rate_limits
        else None
    )
    app = EdgeMiddleware(
        inner, classifier=Classifier(rules=RULES), limiter=limiter, rate_limiter=rate_limiter
    )
    transport = httpx.ASGITransport(app=app, client=("198.51.100.1", 5000))
    client = httpx.AsyncClient(transport=transport, base_url="http://edge")
    return Edge(client, app, limiter, gate, clock)


@pytest_asyncio.fixture
async def edge() -> AsyncIterator[Edge]:
    built = build()
    async with built.client:
        yield built


async def hold(edge: Edge, path: str, count: int) -> list[asyncio.Task[httpx.Response]]:
    tasks = [asyncio.create_task(edge.client.get(path)) for _ in range(count)]
    for _ in range(50):
        await asyncio.sleep(0)
    return tasks


async def test_shed_requests_get_503_problem_json_with_retry_after(edge: Edge) -> None:
    # Limit 10: BULK is guaranteed 1 and borrows up to 80%, so 8 slow BULK requests fit.
    held = await hold(edge, "/bulk/slow", 8)
    assert edge.limiter.in_flight[Priority.BULK] == 8

    refused = await edge.client.get("/bulk/fast")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "30"
    body = refused.json()
    assert body["status"] == 503
    assert body["instance"] == "/bulk/fast"

    # CRITICAL is served meanwhile, and health checks are never shed.
    assert (await edge.client.get("/critical/fast")).status_code == 200
    assert (await edge.client.get("/healthz")).status_code == 200

    edge.gate.set()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200] * 8
    assert edge.limiter.total_in_flight == 0
    assert edge.limiter.shed[(Priority.BULK, "concurrency")] == 1


async def test_critical_is_refused_only_past_the_whole_limit(edge: Edge) -> None:
    held = await hold(edge, "/critical/slow", 10)
    refused = await edge.client.get("/critical/fast")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    edge.gate.set()
    await asyncio.gather(*held)


async def test_permits_are_returned_when_the_app_fails(edge: Edge) -> None:
    with pytest.raises(RuntimeError, match="bug"):
        await edge.client.get("/critical/boom")
    assert (await edge.client.get("/critical/busy")).status_code == 503
    assert edge.limiter.total_in_flight == 0


async def test_rejection_takes_well_under_a_millisecond(edge: Edge) -> None:
    held = await hold(edge, "/bulk/slow", 8)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/bulk/fast",
        "headers": [(b"host", b"edge"), (b"user-agent", b"test")],
        "client": ("198.51.100.1", 5000),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    timings = []
    for _ in range(200):
        started = time.perf_counter()
        await edge.app(scope, receive, send)
        timings.append(time.perf_counter() - started)
    assert sent[0]["status"] == 503
    # A generous sanity bound, not a benchmark: it is tens of microseconds.
    assert statistics.median(timings) < 0.001
    edge.gate.set()
    await asyncio.gather(*held)


async def test_rate_limits_answer_429_per_address() -> None:
    limits = [RateLimit("address", TokenBucket(rate_per_s=1, burst=3), keyed_by="address")]
    edge = build(rate_limits=limits)
    async with edge.client:
        statuses = [(await edge.client.get("/critical/fast")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        throttled = await edge.client.get("/critical/fast")
        assert throttled.headers["content-type"] == "application/problem+json"
        assert throttled.headers["retry-after"] == "1"
        assert edge.limiter.total_in_flight == 0
        assert edge.limiter.shed[(Priority.CRITICAL, "rate_limit")] == 2

        other = httpx.ASGITransport(app=edge.app, client=("198.51.100.2", 5000))
        async with httpx.AsyncClient(transport=other, base_url="http://edge") as neighbour:
            assert (await neighbour.get("/critical/fast")).status_code == 200

        edge.clock.advance(1.0)
        assert (await edge.client.get("/critical/fast")).status_code == 200
