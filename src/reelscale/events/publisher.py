"""The platform's event publisher over the durable stream, and the streams it writes to.

An event goes to the stream named by the first part of its type (`playback.heartbeat` ->
`playback`); a type with no stream of its own goes to `platform`. Its partition key is
the caller's key (a playback session, a profile), else its subject, else its source, so
the events of one session or title stay in order.

`PlatformStreams` creates the streams (with retention) when the process starts, so a
publisher never writes to a stream that does not exist and functions never wait for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reelscale.core.clock import Clock
from reelscale.core.events import CloudEvent, EventPublisher
from reelscale.core.lifecycle import Service
from reelscale.core.metrics import Metrics
from reelscale.events.records import PutEntry
from reelscale.events.store import EventStore

DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class StreamSpec:
    name: str
    shards: int
    max_age_s: float
    max_bytes: int


# Shards follow the traffic: playback heartbeats dominate, metrics are a trickle.
PLATFORM_STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("auth", shards=2, max_age_s=7 * DAY_S, max_bytes=256 << 20),
    StreamSpec("catalog", shards=1, max_age_s=7 * DAY_S, max_bytes=64 << 20),
    StreamSpec("media", shards=1, max_age_s=7 * DAY_S, max_bytes=64 << 20),
    StreamSpec("playback", shards=4, max_age_s=7 * DAY_S, max_bytes=1 << 30),
    StreamSpec("browse", shards=2, max_age_s=3 * DAY_S, max_bytes=512 << 20),
    StreamSpec("metrics", shards=1, max_age_s=3 * DAY_S, max_bytes=256 << 20),
    StreamSpec("platform", shards=1, max_age_s=7 * DAY_S, max_bytes=64 << 20),
)
_BY_PREFIX = {spec.name: spec.name for spec in PLATFORM_STREAMS}
_BY_PREFIX["service"] = "metrics"  # service.metrics: every process's periodic report


def stream_for(event_type: str) -> str:
    """The stream an event of this type is published to."""
    return _BY_PREFIX.get(event_type.split(".", 1)[0], "platform")


class StreamPublisher(EventPublisher):
    def __init__(self, store: EventStore, *, clock: Clock, metrics: Metrics | None = None) -> None:
        super().__init__(clock=clock, metrics=metrics)
        self.store = store

    async def _store(self, events: list[CloudEvent], key: str | None) -> None:
        by_stream: dict[str, list[PutEntry]] = {}
        for event in events:
            partition_key = key or event.subject or event.source
            by_stream.setdefault(stream_for(event.type), []).append(
                PutEntry(event, partition_key, event.id)  # the event id makes a retry a no-op
            )
        for stream, entries in by_stream.items():
            await self.store.put_batch(stream, entries)


class PlatformStreams(Service):
    """Creates the platform's streams on start (idempotent: an existing stream is kept)."""

    name = "streams"

    def __init__(self, store: EventStore, specs: Sequence[StreamSpec] = PLATFORM_STREAMS) -> None:
        super().__init__()
        self.store = store
        self.specs = specs

    async def on_start(self) -> None:
        existing = set(await self.store.list_streams())
        for spec in self.specs:
            if spec.name in existing:
                continue
            await self.store.create_stream(
                spec.name, shards=spec.shards, max_age_s=spec.max_age_s, max_bytes=spec.max_bytes
            )
