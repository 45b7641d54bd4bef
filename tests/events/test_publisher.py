"""The platform's publisher: which stream an event goes to, under which key, and what
happens when the stream cannot take it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.core.metrics import Metrics
from reelscale.events.consumer import GroupConsumer
from reelscale.events.embedded import EmbeddedEventStore
from reelscale.events.publisher import (
    PLATFORM_STREAMS,
    PlatformStreams,
    StreamPublisher,
    stream_for,
)


@pytest.mark.parametrize(
    ("type_", "stream"),
    [
        ("auth.login.failed", "auth"),
        ("playback.heartbeat", "playback"),
        ("browse.click", "browse"),
        ("service.metrics", "metrics"),
        ("media.asset.playable", "media"),
        ("catalog.title.created", "catalog"),
        ("something.else", "platform"),
    ],
)
def test_an_event_type_names_its_stream(type_: str, stream: str) -> None:
    assert stream_for(type_) == stream


async def test_events_land_on_their_streams_keyed_and_in_order(tmp_path: Path) -> None:
    clock = FakeClock()
    store = EmbeddedEventStore(tmp_path / "events", clock=clock)
    await store.start()
    try:
        await PlatformStreams(store).start()
        assert set(await store.list_streams()) == {spec.name for spec in PLATFORM_STREAMS}
        publisher = StreamPublisher(store, clock=clock, metrics=Metrics())
        seen: list[CloudEvent] = []

        async def tap(event: CloudEvent) -> None:
            seen.append(event)

        publisher.tap(tap)
        beats = [
            publisher.make(source="t", type="playback.heartbeat", subject="title", data={"n": n})
            for n in range(5)
        ]
        await publisher.publish_many(beats, key="session-1")
        login = await publisher.emit(source="t", type="auth.login.failed", subject="m", data={})

        consumer = GroupConsumer(store, "playback", group="check")
        records = await consumer.poll()
        assert [r.event.data["n"] for r in records] == [0, 1, 2, 3, 4]
        assert {r.partition_key for r in records} == {"session-1"}
        assert len({r.shard for r in records}) == 1
        auth = await GroupConsumer(store, "auth", group="check").poll()
        assert [(r.event.id, r.partition_key) for r in auth] == [(login.id, "m")]  # the subject
        assert seen == [*beats, login]

        # Publishing the same event again (a retry) stores nothing new: its id is the key.
        await publisher.publish(beats[0], key="session-1")
        assert await consumer.poll() == []

        # Restarting keeps the streams as they are, even one resharded since.
        await store.reshard("playback", shards=8)
        await PlatformStreams(store).start()
        assert len((await store.describe_stream("playback")).shards) == 8
    finally:
        await store.stop()


async def test_a_stream_that_cannot_take_events_never_fails_the_publisher(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    metrics = Metrics()
    store = EmbeddedEventStore(tmp_path / "events", clock=clock)  # never started
    publisher = StreamPublisher(store, clock=clock, metrics=metrics)
    seen: list[CloudEvent] = []

    async def tap(event: CloudEvent) -> None:
        seen.append(event)

    publisher.tap(tap)
    await publisher.emit(source="t", type="playback.started", subject="x", data={})
    assert seen == []  # taps see only what was stored
    assert "events not stored" in caplog.text
    failed = metrics.registry.get_sample_value(
        "reelscale_events_failed_total", {"type": "playback.started"}
    )
    assert failed == 1.0
