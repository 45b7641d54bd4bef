"""The durable event stream: named streams of shards, consumer groups, checkpoints.

Backends: `embedded` (a log on local disk, the default) and `nats` (JetStream). Both
implement `store.EventStore`; `backends.event_store_from_url` picks one from a URL.
"""

from __future__ import annotations

from reelscale.events.records import (
    PutEntry,
    Record,
    ShardLag,
    StartAt,
    StartPosition,
    StreamInfo,
)
from reelscale.events.store import EventStore, ShardReader

__all__ = [
    "EventStore",
    "PutEntry",
    "Record",
    "ShardLag",
    "ShardReader",
    "StartAt",
    "StartPosition",
    "StreamInfo",
]
