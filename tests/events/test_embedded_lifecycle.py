"""The embedded store leaves nothing open behind it, even when callers are cancelled."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from reelscale.core.clock import FakeClock
from reelscale.events.embedded import EmbeddedEventStore


def open_under(directory: Path) -> list[str]:
    paths = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed while listing
        if target.startswith(str(directory)):
            paths.append(target)
    return paths


async def test_a_stream_creation_cancelled_midway_is_still_closed_on_stop(
    tmp_path: Path,
) -> None:
    store = EmbeddedEventStore(tmp_path / "events", clock=FakeClock())
    await store.start()
    creating = asyncio.create_task(store.create_stream("late", shards=2))
    await asyncio.sleep(0)  # it is in its worker thread now
    creating.cancel()
    await store.stop()
    assert open_under(tmp_path) == []
    reopened = EmbeddedEventStore(tmp_path / "events", clock=FakeClock())
    await reopened.start()
    try:  # the stream was made whole, not half
        assert await reopened.list_streams() == ["late"]
        assert len((await reopened.describe_stream("late")).shards) == 2
    finally:
        await reopened.stop()
