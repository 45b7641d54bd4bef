"""The shared event envelope (CloudEvents 1.0) and the in-process event hook.

Services publish what happened; consumers subscribe by type prefix. The hook is the
seam where the durable event stream plugs in later: publishers do not change.
"""

from __future__ import annotations

import logging
import uuid
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


Handler = Callable[[CloudEvent], Awaitable[None]]


class EventHook:
    """Delivers each published event to every subscriber whose prefix matches its type.

    A failing subscriber is logged and skipped; it never fails the publisher's request.
    """

    def __init__(self, *, clock: Clock, metrics: Metrics | None = None) -> None:
        self.clock = clock
        self.metrics = metrics
        self._subscribers: list[tuple[str, Handler]] = []

    def subscribe(self, handler: Handler, *, prefix: str = "") -> None:
        self._subscribers.append((prefix, handler))

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

    async def publish(self, event: CloudEvent) -> None:
        if self.metrics is not None:
            self.metrics.events_published.labels(event.type).inc()
        for prefix, handler in self._subscribers:
            if event.type.startswith(prefix):
                try:
                    await handler(event)
                except Exception:
                    log.exception("event subscriber failed", extra={"event_type": event.type})

    async def emit(
        self, *, source: str, type: str, subject: str | None = None, data: dict[str, Any]
    ) -> CloudEvent:
        event = self.make(source=source, type=type, subject=subject, data=data)
        await self.publish(event)
        return event
