"""A real platform on loopback (uvicorn in this event loop) with analytics wired in.

Server-sent events need a real server: httpx's ASGI transport hands back a response only
once it is complete. Until create_app wires analytics itself, `wire_analytics` does what
create_app is to do (docs/analytics.md, "Wiring"); once it does, the app's own is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from reelscale.accounts.roles import Role
from reelscale.analytics.api import router as analytics_router
from reelscale.analytics.functions import register
from reelscale.analytics.service import Analytics, AnalyticsConfig
from reelscale.app import create_app
from reelscale.core.clock import Clock, FakeClock
from tests.conftest import make_settings
from tests.e2e.server import free_port
from tests.support import PASSWORD, bearer, grant, login, signup


def wire_analytics(app: FastAPI, analytics: Analytics, *, replace: bool = False) -> Analytics:
    """Give an app built by create_app its analytics, unless create_app already did (or
    `replace`, for a test that needs its own kind): the object, its lifecycle, its functions
    on the app's own stream, and its routes."""
    existing: Analytics | None = getattr(app.state, "analytics", None)
    if existing is not None and not replace:
        return existing
    app.state.analytics = analytics  # what the routes read
    app.state.platform.supervisor.add(analytics)
    functions = getattr(app.state, "functions", None)
    if functions is not None and "analytics-playback" not in functions.registry:
        register(functions.registry, analytics, instance="test")  # added when it starts
    if not any(getattr(route, "path", "") == "/v1/ops/analytics" for route in app.routes):
        app.include_router(analytics_router)
    return analytics


class PlatformServer(uvicorn.Server):
    """uvicorn as `reelscale serve` is to run it: live streams are ended when shutdown
    begins, or uvicorn would wait for them (it tells the app nothing until they finish)."""

    async def shutdown(self, sockets: Any = None) -> None:
        analytics: Analytics | None = getattr(self.config.app.state, "analytics", None)
        if analytics is not None:
            analytics.close()
        await super().shutdown(sockets)


@dataclass
class Site:
    url: str
    app: FastAPI
    analytics: Analytics
    clock: Any  # a FakeClock unless the test asked for the system clock
    server: PlatformServer
    task: asyncio.Task[None]

    def client(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **options)

    async def token(self, role: Role | None = None) -> str:
        email = f"u{uuid.uuid4().hex[:10]}@example.com"
        async with self.client() as client:
            await signup(client, email, PASSWORD)
            if role is not None:
                await grant(self.app, email, role)
            return str((await login(client, email, PASSWORD))["access_token"])

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


@contextlib.asynccontextmanager
async def running_site(
    tmp_path: Path,
    *,
    analytics: Callable[[Clock], Analytics] | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> AsyncIterator[Site]:
    clock = clock or FakeClock(datetime.now(UTC).replace(microsecond=0))
    port = free_port()
    database = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    app = create_app(make_settings(tmp_path, database, port=port, **settings), "all", clock=clock)
    build = analytics or (lambda c: Analytics(clock=c, config=AnalyticsConfig(warmup_s=0)))
    wired = wire_analytics(app, build(clock), replace=analytics is not None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = PlatformServer(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        site = Site(f"http://127.0.0.1:{port}", app, wired, clock, server, task)
        yield site
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


@pytest_asyncio.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(tmp_path) as s:
        yield s


async def admin_headers(site: Site) -> dict[str, str]:
    return bearer(await site.token(Role.ADMIN))


@dataclass
class ServerSentEvent:
    event: str
    data: str
    id: str | None


async def sse_events(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """Parse a text/event-stream body into events (only what this API sends)."""
    event, data, ident = "message", [], None
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield ServerSentEvent(event, "\n".join(data), ident)
            event, data, ident = "message", [], None
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            ident = value
