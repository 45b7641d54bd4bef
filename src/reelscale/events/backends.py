"""Pick the event store from a URL, as every backend is picked (REELSCALE_STREAM_URL).

None, "" or "embedded"        the embedded log in <data_dir>/events
embedded:///var/lib/rs/events  the embedded log in that directory
nats://host:4222[,nats://...]  NATS JetStream
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from reelscale.core.clock import Clock
from reelscale.events.embedded import EmbeddedEventStore
from reelscale.events.store import EventStore


def event_store_from_url(
    url: str | None, *, data_dir: Path, clock: Clock | None = None
) -> EventStore:
    """The event store a URL names; nothing connects or opens until it is started."""
    if not url or url == "embedded":
        return EmbeddedEventStore(data_dir / "events", clock=clock)
    scheme = urlsplit(url).scheme
    if scheme == "embedded":
        path = urlsplit(url).path
        if not path:
            raise ValueError("embedded:// needs a directory, e.g. embedded:///var/lib/reelscale")
        return EmbeddedEventStore(Path(path), clock=clock)
    if scheme in ("nats", "tls"):
        from reelscale.events.nats import NatsEventStore  # only deployments with NATS need it

        return NatsEventStore(url, clock=clock)
    raise ValueError(f"unknown event stream URL {url!r}: use embedded, embedded:///dir or nats://")
