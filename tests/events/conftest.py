"""Event-store fixtures: one contract, two backends.

`store_backend` runs each contract test against the embedded log (in a temp dir, on a
fake clock) and against NATS JetStream at REELSCALE_TEST_NATS_URL. NATS tests skip with
the reason when the server is unreachable, and fail instead with CI=true, like the
PostgreSQL tests. Every test gets its own stream names, so runs never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from tests.conftest import server_unreachable

from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.events.embedded import EmbeddedEventStore
from reelscale.events.records import PutEntry, Record, StartAt
from reelscale.events.store import EventStore, ShardReader

NATS_URL = os.environ.get("REELSCALE_TEST_NATS_URL", "nats://127.0.0.1:4222")


def event(n: int = 0, *, type: str = "test.happened", size: int = 0, **data: Any) -> CloudEvent:
    payload: dict[str, Any] = {"n": n, **data}
    if size:
        payload["blob"] = "x" * size
    return CloudEvent(
        id=uuid.uuid4().hex,
        source="tests/events",
        type=type,
        time=datetime(2026, 1, 1, tzinfo=UTC),
        data=payload,
    )


def entries(count: int, *, keys: Sequence[str] = ("k",), start: int = 0) -> list[PutEntry]:
    return [PutEntry(event(start + i), keys[(start + i) % len(keys)]) for i in range(count)]


@dataclass
class Backend:
    """A started store plus what a test needs to drive its time."""

    name: str
    store: EventStore
    clock: FakeClock | None
    streams: list[str] = field(default_factory=list)

    def stream_name(self) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.streams.append(name)
        return name

    async def let_time_pass(self, seconds: float) -> None:
        """Move time on: the fake clock for the embedded store, real time for NATS."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)
        await self.store.enforce_retention()


async def drain(
    reader: ShardReader, *, checkpoint: bool = True, rounds: int = 200, wait_s: float = 0.2
) -> list[Record]:
    """Everything a reader has now (reads until one comes back empty)."""
    out: list[Record] = []
    for _ in range(rounds):
        batch = await reader.read(max_records=500, wait_s=wait_s)
        if not batch:
            break
        out.extend(batch)
        if checkpoint:
            await reader.checkpoint(batch[-1].sequence)
    return out


async def read_exactly(reader: ShardReader, count: int, *, timeout_s: float = 5.0) -> list[Record]:
    """`count` records, over as many reads as it takes (a read may return fewer)."""
    out: list[Record] = []
    async with asyncio.timeout(timeout_s):
        while len(out) < count:
            out += await reader.read(max_records=count - len(out), wait_s=0.2)
    return out


@contextlib.asynccontextmanager
async def embedded_backend(directory: Path, **options: Any) -> AsyncIterator[Backend]:
    clock = FakeClock(datetime.now(UTC))
    store = EmbeddedEventStore(directory, clock=clock, **options)
    await store.start()
    try:
        yield Backend("embedded", store, clock)
    finally:
        await store.stop()


@contextlib.asynccontextmanager
async def nats_backend() -> AsyncIterator[Backend]:
    from reelscale.events.nats import NatsEventStore

    store = NatsEventStore(NATS_URL, connect_timeout_s=2, max_reconnect_attempts=1)
    try:
        # A plain TCP probe first: nats-py would back off and retry for seconds.
        url = urlsplit(NATS_URL)
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(url.hostname, url.port or 4222), 2
        )
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(store.start(), 5)
    except Exception as exc:  # refused, timed out, no JetStream: all mean "not there"
        server_unreachable(f"NATS at {NATS_URL}", exc)
        raise
    backend = Backend("nats", store, None)
    try:
        yield backend
    finally:
        for name in backend.streams:
            with contextlib.suppress(Exception):
                await store.delete_stream(name)
        await store.stop()


# Select one backend with -k embedded / -k nats (the parameter ids).
@pytest.fixture(params=["embedded", "nats"])
def store_backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def backend(store_backend_name: str, tmp_path: Path) -> AsyncIterator[Backend]:
    if store_backend_name == "embedded":
        async with embedded_backend(tmp_path / "events", segment_bytes=4096) as b:
            yield b
    else:
        async with nats_backend() as b:
            yield b


async def reader_for(
    backend: Backend, stream: str, shard: int, *, group: str = "g", **options: Any
) -> ShardReader:
    options.setdefault("start", StartAt.trim_horizon())
    return await backend.store.open_reader(stream, group=group, shard=shard, **options)
