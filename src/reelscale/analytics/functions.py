"""The functions that feed `Analytics`: one per stream, each handing its batches to `ingest`.

    analytics-playback   stream playback   types playback.*
    analytics-browse     stream browse     types browse.*
    analytics-metrics    stream metrics    types service.metrics

Every process that serves analytics aggregates *all* shards itself, so its consumer groups
must be its own: pass `instance` (the process's stable name) when more than one process
runs the role; two processes sharing a group would each see only part of the shards.
A group with no checkpoint yet starts one retention period back, so a new process fills
its charts at once; a restarted one resumes from its checkpoint (the windows it held in
memory before the restart are not rebuilt).

One batch at a time per shard (parallelization 1): `Analytics` skips redelivered records by
comparing sequences per shard, which holds only while each shard is applied in order. The
handler never fails: bad events are counted inside `Analytics`, not retried.
"""

from __future__ import annotations

from datetime import timedelta

from reelscale.analytics.service import Analytics
from reelscale.events.records import Record, StartAt
from reelscale.functions import BatchFailure, FunctionRegistry

# (function name, stream, type prefixes): the streams the platform publishes these to
FEEDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("analytics-playback", "playback", ("playback.",)),
    ("analytics-browse", "browse", ("browse.",)),
    ("analytics-metrics", "metrics", ("service.metrics",)),
)
BATCH_SIZE = 500
BATCH_WINDOW_S = 0.2  # a live chart may trail by this much; batches stay large under load


def register(
    registry: FunctionRegistry,
    analytics: Analytics,
    *,
    instance: str | None = None,
    start: StartAt | None = None,
) -> None:
    """Register the analytics functions (consumer groups `<name>-<instance>` if given)."""
    if start is None:
        since = analytics.clock.now() - timedelta(seconds=analytics.config.retention_s)
        start = StartAt.at_timestamp(since)

    async def handle(batch: list[Record]) -> BatchFailure | None:
        analytics.ingest(batch)
        return None

    for name, stream, types in FEEDS:
        registry.function(
            name,
            stream=stream,
            types=types,
            batch_size=BATCH_SIZE,
            batch_window_s=BATCH_WINDOW_S,
            parallelization=1,
            bisect_on_error=False,
            max_retries=1,
            dead_letter=False,  # nothing to replay: the handler does not fail on bad events
            start=start,
            group=f"{name}-{instance}" if instance else None,
        )(handle)
