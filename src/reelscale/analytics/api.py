"""Operations analytics routes: the current snapshot, and the same pushed as server-sent events.

    GET /v1/ops/analytics?minutes=60        one snapshot (ops:read)
    GET /v1/ops/analytics/live?minutes=15   text/event-stream: `event: snapshot` every ~2 s
                                            and on change (at most twice a second)

The stream ends on its own when the caller's access token expires (so a revoked or
downgraded operator does not keep watching: the client reconnects with a fresh token), when
the client goes away (Starlette cancels the generator) and when `Analytics` stops or is
closed at shutdown. Nothing is buffered per client: the next snapshot is built only once
the last one has been handed to the server, so a slow client holds back only itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from reelscale.analytics.schemas import AnalyticsSnapshot
from reelscale.analytics.service import Analytics
from reelscale.core.auth import requires
from reelscale.core.errors import NotFound, TooManyRequests
from reelscale.core.identity import Principal, Scope
from reelscale.core.problems import STANDARD_RESPONSES

router = APIRouter(prefix="/v1/ops/analytics", tags=["operations"])
ops_reader = requires(Scope.OPS_READ)

MAX_LIVE_SUBSCRIBERS = 64  # live streams per process; each costs a snapshot every ~2 s
Minutes = Annotated[
    int, Query(ge=1, le=60, description="How many minutes of each series to include")
]
_SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx in front must pass events through, not buffer them
}


def _analytics(request: Request) -> Analytics:
    analytics: Analytics | None = getattr(request.app.state, "analytics", None)
    if analytics is None:
        raise NotFound("analytics does not run in this process")
    return analytics


@router.get(
    "",
    response_model=AnalyticsSnapshot,
    responses=STANDARD_RESPONSES,
    dependencies=[Depends(ops_reader)],
)
async def snapshot(
    minutes: Minutes = 60, analytics: Analytics = Depends(_analytics)
) -> AnalyticsSnapshot:
    """The live aggregates now: headline numbers, the recent series and ingest health."""
    return analytics.snapshot(minutes=minutes)


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Snapshots as they change"},
        **STANDARD_RESPONSES,
    },
)
async def live(
    minutes: Minutes = 15,
    principal: Principal = Depends(ops_reader),
    analytics: Analytics = Depends(_analytics),
) -> StreamingResponse:
    """Server-sent events: a snapshot every ~2 s and on change, until the token expires."""
    if analytics.subscribers >= MAX_LIVE_SUBSCRIBERS:
        raise TooManyRequests("too many live analytics streams; try again soon", retry_after=5)
    return StreamingResponse(
        _events(analytics, principal, minutes),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )


async def _events(analytics: Analytics, principal: Principal, minutes: int) -> AsyncIterator[str]:
    yield "retry: 3000\n\n"  # how long a browser's EventSource waits before reconnecting
    async for version in analytics.changes():
        if analytics.clock.now() >= principal.expires_at:
            yield "event: expired\ndata: {}\n\n"
            return
        body = analytics.snapshot(minutes=minutes).model_dump_json()
        yield f"event: snapshot\nid: {version}\ndata: {body}\n\n"
