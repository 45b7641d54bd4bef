"""Building stream records for the analytics tests, at chosen event times."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reelscale.analytics.service import Analytics, AnalyticsConfig
from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.events.records import Record

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # on a minute (and a 5-minute) boundary


def stream_for(type: str) -> str:
    """The stream the platform publishes a type to (service.metrics goes to metrics)."""
    prefix = type.split(".", 1)[0]
    return "metrics" if prefix == "service" else prefix


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ms(seconds: float) -> int:
    return int(at(seconds).timestamp() * 1000)


def cloud_event(
    type: str, data: dict[str, Any], *, time: datetime, subject: str | None = None
) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4().hex,
        source="tests/analytics",
        type=type,
        time=time,
        subject=subject,
        data=data,
    )


@dataclass
class Feed:
    """Makes records as a stream would: sequences grow per shard, times are event times."""

    clock: FakeClock
    analytics: Analytics
    _sequence: dict[tuple[str, int], int] = field(default_factory=dict)

    def record(
        self,
        type: str,
        data: dict[str, Any] | None = None,
        *,
        t: float,
        shard: int = 0,
        subject: str | None = None,
        stream: str | None = None,
    ) -> Record:
        stream = stream or stream_for(type)
        key = (stream, shard)
        self._sequence[key] = self._sequence.get(key, 0) + 1
        return Record(
            stream=stream,
            shard=shard,
            sequence=self._sequence[key],
            partition_key="k",
            timestamp=self.clock.now(),
            event=cloud_event(type, data or {}, time=at(t), subject=subject),
        )

    def send(self, *records: Record) -> None:
        self.analytics.ingest(list(records))

    def event(self, type: str, data: dict[str, Any] | None = None, **options: Any) -> Record:
        record = self.record(type, data, **options)
        self.send(record)
        return record


def make_feed(*, now_s: float = 0.0, **config: Any) -> Feed:
    """Analytics on a fake clock at T0 + now_s; no warm-up unless asked for (tests of the
    warm-up itself set it), so a watermark exists from the first event."""
    config.setdefault("warmup_s", 0.0)
    clock = FakeClock(at(now_s))
    return Feed(clock, Analytics(clock=clock, config=AnalyticsConfig(**config)))


def started(session: str, title: str = "title-a", **extra: Any) -> dict[str, Any]:
    return {
        "session_id": session,
        "profile_id": "p",
        "member_id": "m",
        "title_id": title,
        "resume_at_s": 0,
        "device": "web",
        **extra,
    }


def heartbeat(
    session: str,
    title: str = "title-a",
    *,
    watched_ms: int = 10_000,
    rebuffer_ms: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "session_id": session,
        "profile_id": "p",
        "title_id": title,
        "position_s": 1.0,
        "state": "playing",
        "rendition": "360p",
        "duration_s": 100.0,
        "watched_ms": watched_ms,
        "rebuffer_ms": rebuffer_ms,
        "device": "web",
        **extra,
    }


def stopped(session: str, title: str = "title-a") -> dict[str, Any]:
    return {
        "session_id": session,
        "profile_id": "p",
        "title_id": title,
        "position_s": 3.0,
        "duration_s": 100.0,
    }


def service_report(instance: str, **services: dict[str, Any]) -> dict[str, Any]:
    return {"instance": instance, "roles": ["all"], "interval_s": 10, "services": services}
