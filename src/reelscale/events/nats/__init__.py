"""The NATS JetStream backend (nats-py), for the scaled-out deployment."""

from __future__ import annotations

from reelscale.events.nats.store import NatsEventStore

__all__ = ["NatsEventStore"]
