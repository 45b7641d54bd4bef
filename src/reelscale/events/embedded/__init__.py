"""The embedded backend: a segmented, checksummed, group-committed log on local disk."""

from __future__ import annotations

from reelscale.events.embedded.store import EmbeddedEventStore

__all__ = ["EmbeddedEventStore"]
