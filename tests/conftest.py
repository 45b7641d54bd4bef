"""Shared fixtures: settings, a database per test (SQLite or PostgreSQL), and an app client.

PostgreSQL tests use the server at REELSCALE_TEST_POSTGRES_URL (default: the local one with
trust auth). Outside CI they skip, with the reason, when it is unreachable; with CI=true
they fail, because CI must prove the scaled-out backend works.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from reelscale.app import create_app
from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.core.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "REELSCALE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_SECRET = "test-secret-" + "x" * 40
# The edge is on in every test app (tokens checked at the edge, requests classified,
# admitted and rate-limited), sized so that the suite's own traffic is never refused: one
# client address signs in hundreds of times, and a shared 2-core machine's CPU spikes and
# slow requests must not shed a functional test. Shedding and throttling have their own
# tests (tests/edge), which set these low.
EDGE_TEST_SETTINGS: dict[str, Any] = {
    "edge_address_rate_per_s": 100_000.0,
    "edge_address_burst": 100_000.0,
    "edge_member_rate_per_s": 100_000.0,
    "edge_member_burst": 100_000.0,
    "edge_auth_rate_per_s": 100_000.0,
    "edge_auth_burst": 100_000.0,
    "edge_limit_min": 512,
    "edge_utilisation_shedding": False,
}


def server_unreachable(what: str, error: BaseException) -> None:
    """Skip outside CI, fail in CI."""
    message = f"{what} is unreachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(f"{message}; set it up or run with CI=true to make this a failure")


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        server_unreachable(f"PostgreSQL at {POSTGRES_ADMIN_URL}", exc)
        raise  # unreachable: skip/fail raise
    name = f"rs_test_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
        yield base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'reelscale.db'}"
        return
    async with postgres_database() as url:
        yield url


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": tmp_path,
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        # cheap argon2 so the suite stays fast; production defaults are tested separately
        "argon2_memory_kib": 1024,
        "argon2_time_cost": 1,
        "argon2_parallelism": 1,
        "log_json": False,
        **EDGE_TEST_SETTINGS,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Harness:
    """An app started in process, a client for it, its clock and the events it published."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    events: list[CloudEvent] = field(default_factory=list)

    def event_types(self) -> list[str]:
        return [event.type for event in self.events]


@contextlib.asynccontextmanager
async def started(settings: Settings, roles: str = "all") -> AsyncIterator[Harness]:
    clock = FakeClock()
    app = create_app(settings, roles, clock=clock)
    harness = Harness(app=app, client=httpx.AsyncClient(), clock=clock)

    async def record(event: CloudEvent) -> None:
        harness.events.append(event)

    app.state.platform.events.tap(record)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            harness.client = client
            yield harness


@pytest_asyncio.fixture
async def harness(tmp_path: Path, database_url: str) -> AsyncIterator[Harness]:
    async with started(make_settings(tmp_path, database_url)) as h:
        yield h


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return make_settings(tmp_path, overrides.pop("database_url", None), **overrides)

    return build


@pytest_asyncio.fixture
async def sqlite_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """The app on SQLite only, for tests whose subject is not the database (ffmpeg work)."""
    async with started(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")) as h:
        yield h


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the whole session."""
    from tests.e2e.server import free_port

    if importlib.util.find_spec("moto") is None:
        server_unreachable("moto's S3 server", ModuleNotFoundError("pip install moto[server]"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                server_unreachable("moto's S3 server", RuntimeError(log.read_text()[-2000:]))
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(endpoint, timeout=1)
                break
            if time.monotonic() > deadline:
                server_unreachable("moto's S3 server", TimeoutError("not answering in 30 s"))
            time.sleep(0.05)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
