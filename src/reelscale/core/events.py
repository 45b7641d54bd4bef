"""The shared event envelope (CloudEvents 1.0) and the publisher services emit through.

Services publish what happened; the publisher (implemented over the durable stream in
`reelscale.events.publisher`) puts it on a named stream. Consumers are functions that read
the stream (`reelscale.functions`), in this process or any other.
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reelscale.core.clock import Clock
from reelscale.core.metrics import Metrics

log = logging.getLogger("reelscale.events")


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope with JSON data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=128, pattern=r"^[a-z0-9_.-]+$")
    time: datetime
    subject: str | None = Field(default=None, max_length=256)
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)


Tap = Callable[[CloudEvent], Awaitable[None]]


class EventPublisher(ABC):
    """Where services publish what happened: the durable event stream, in every deployment.

    `publish` returns once the event is stored (for the embedded log: after its fsync). A
    failure to store is logged and counted, never raised: a member's request must not fail
    because the stream is briefly unavailable. Consumers read the stream through the
    functions runtime; `tap` only lets this process observe what it publishes itself (tests
    and in-process instrumentation), it is not a way to consume the platform's events.
    """

    def __init__(self, *, clock: Clock, metrics: Metrics | None = None) -> None:
        self.clock = clock
        self.metrics = metrics
        self._taps: list[Tap] = []

    def tap(self, handler: Tap) -> None:
        self._taps.append(handler)

    def make(
        self, *, source: str, type: str, subject: str | None = None, data: dict[str, Any]
    ) -> CloudEvent:
        return CloudEvent(
            id=uuid.uuid4().hex,
            source=source,
            type=type,
            time=self.clock.now(),
            subject=subject,
            data=data,
        )

    async def publish(self, event: CloudEvent, *, key: str | None = None) -> None:
        """Store one event; `key` orders it (defaults to its subject, else its source)."""
        await self.publish_many([event], key=key)

    async def publish_many(self, events: list[CloudEvent], *, key: str | None = None) -> None:
        if not events:
            return
        try:
            await self._store(events, key)
        except Exception:
            log.exception(
                "events not stored", extra={"event_type": events[0].type, "count": len(events)}
            )
            if self.metrics is not None:
                self.metrics.events_failed.labels(events[0].type).inc(len(events))
            return
        for event in events:
            if self.metrics is not None:
                self.metrics.events_published.labels(event.type).inc()
            for handler in self._taps:
                try:
                    await handler(event)
                except Exception:
                    log.exception("event tap failed", extra={"event_type": event.type})

    async def emit(
        self,
        *,
        source: str,
        type: str,
        subject: str | None = None,
        data: dict[str, Any],
        key: str | None = None,
    ) -> CloudEvent:
        event = self.make(source=source, type=type, subject=subject, data=data)
        await self.publish(event, key=key)
        return event

    @abstractmethod
    async def _store(self, events: list[CloudEvent], key: str | None) -> None:
        """Append the events durably, in order, under one partition key if given."""
