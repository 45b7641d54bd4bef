"""Playback HTTP routes: press play, heartbeats, stop, continue watching, history, thumbs,
and the member activity (impressions, clicks, searches) the UI reports.

Every one of them publishes what happened on the event stream. Player-side events
(quality switches, rebuffers, errors) arrive inside heartbeats and stops, so a player
makes no extra requests for them; they are published with the session as partition key,
so one session's events stay in order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status

from reelscale.core.auth import requires
from reelscale.core.errors import Conflict, Forbidden, NotFound, PlatformError, TooManyRequests
from reelscale.core.events import CloudEvent
from reelscale.core.identity import Principal, Scope
from reelscale.core.problems import STANDARD_RESPONSES
from reelscale.playback import service, thumbs
from reelscale.playback.runtime import SOURCE, PlaybackRuntime
from reelscale.playback.schemas import (
    AcceptedOut,
    BrowseBatchIn,
    Click,
    HeartbeatIn,
    HeartbeatOut,
    Impression,
    PlayerError,
    PlayerEvent,
    PlayIn,
    PlayOut,
    ProgressOut,
    QualitySwitch,
    StopIn,
    ThumbIn,
    ThumbOut,
)

router = APIRouter(prefix="/v1/playback", tags=["playback"])
PROBLEMS = STANDARD_RESPONSES

player = requires(Scope.PLAYBACK_PLAY)
history_reader = requires(Scope.HISTORY_READ)
history_writer = requires(Scope.HISTORY_WRITE)


def _runtime(request: Request) -> PlaybackRuntime:
    runtime: PlaybackRuntime = request.app.state.playback
    return runtime


@router.post(
    "/sessions", status_code=status.HTTP_201_CREATED, response_model=PlayOut, responses=PROBLEMS
)
async def play(
    data: PlayIn,
    principal: Principal = Depends(player),
    runtime: PlaybackRuntime = Depends(_runtime),
) -> PlayOut:
    """Press play: checks entitlement, the profile's maturity ceiling and the plan's stream
    limit, and returns a short-lived signed manifest URL and where to resume."""
    try:
        out = await service.authorize(ctx=runtime.ctx, principal=principal, data=data)
    except PlatformError as exc:
        await runtime.platform.events.emit(
            source=SOURCE,
            type="playback.start_failed",
            subject=str(data.title_id),
            key=principal.profile_id or principal.subject,
            data={
                "profile_id": principal.profile_id,
                "title_id": str(data.title_id),
                "reason": _start_failure(exc),
                "device": data.device,
            },
        )
        raise
    await runtime.platform.events.emit(
        source=SOURCE,
        type="playback.started",
        subject=str(out.title_id),
        key=str(out.session_id),
        data={
            "session_id": str(out.session_id),
            "profile_id": principal.profile_id,
            "member_id": principal.subject,
            "title_id": str(out.title_id),
            "resume_at_s": out.resume_at_s,
            "device": data.device,
        },
    )
    return out


def _start_failure(exc: PlatformError) -> str:
    """A short, stable reason for a refused play, for the start-failure analytics."""
    if isinstance(exc, TooManyRequests):
        return "stream_limit"
    if isinstance(exc, Forbidden):
        return "maturity" if "profile" in str(exc) else "entitlement"
    if isinstance(exc, Conflict):
        return "not_playable"
    if isinstance(exc, NotFound):
        return "not_found"
    return "error"


def _player_events(
    runtime: PlaybackRuntime,
    *,
    session_id: uuid.UUID,
    title_id: uuid.UUID,
    events: list[PlayerEvent],
) -> list[CloudEvent]:
    """The stream events for what a player reported in a heartbeat or a stop."""
    common: dict[str, Any] = {"session_id": str(session_id), "title_id": str(title_id)}
    out = []
    for event in events:
        data: dict[str, Any]
        if isinstance(event, QualitySwitch):
            type_ = "playback.quality_switched"
            data = {"from_rendition": event.from_rendition, "to_rendition": event.to_rendition}
        elif isinstance(event, PlayerError):
            type_ = "playback.error"
            data = {
                "code": event.code,
                "fatal": event.fatal,
                "before_first_frame": event.before_first_frame,
            }
        else:
            type_ = "playback.rebuffered"
            data = {"duration_ms": event.duration_ms}
        out.append(
            runtime.platform.events.make(
                source=SOURCE, type=type_, subject=str(title_id), data=common | data
            )
        )
    return out


@router.post("/sessions/{session_id}/heartbeat", response_model=HeartbeatOut, responses=PROBLEMS)
async def heartbeat(
    session_id: uuid.UUID,
    data: HeartbeatIn,
    principal: Principal = Depends(player),
    runtime: PlaybackRuntime = Depends(_runtime),
) -> HeartbeatOut:
    """Where the player is; renews the signed media prefix, which the player switches to."""
    session, prefix, expires, duration = await service.heartbeat(
        ctx=runtime.ctx, principal=principal, session_id=session_id, data=data
    )
    events = runtime.platform.events
    beat = events.make(
        source=SOURCE,
        type="playback.heartbeat",
        subject=str(session.title_id),
        data={
            "session_id": str(session_id),
            "profile_id": principal.profile_id,
            "title_id": str(session.title_id),
            "position_s": data.position_s,
            "state": data.state,
            "rendition": data.rendition,
            "duration_s": duration,
            "watched_ms": data.watched_ms,
            "rebuffer_ms": data.rebuffer_ms,
            "device": session.device,
        },
    )
    reported = _player_events(
        runtime, session_id=session_id, title_id=session.title_id, events=data.events
    )
    await events.publish_many([*reported, beat], key=str(session_id))
    return HeartbeatOut(media_prefix=prefix, expires_at=datetime.fromtimestamp(expires, UTC))


@router.post(
    "/sessions/{session_id}/stop", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS
)
async def stop(
    session_id: uuid.UUID,
    data: StopIn,
    principal: Principal = Depends(player),
    runtime: PlaybackRuntime = Depends(_runtime),
) -> Response:
    """End a play session, keeping its resume point; frees a stream of the plan."""
    session, duration = await service.stop(
        ctx=runtime.ctx, principal=principal, session_id=session_id, position_s=data.position_s
    )
    events = runtime.platform.events
    stopped = events.make(
        source=SOURCE,
        type="playback.stopped",
        subject=str(session.title_id),
        data={
            "session_id": str(session_id),
            "profile_id": principal.profile_id,
            "title_id": str(session.title_id),
            "position_s": data.position_s,
            "duration_s": duration,
        },
    )
    reported = _player_events(
        runtime, session_id=session_id, title_id=session.title_id, events=data.events
    )
    await events.publish_many([*reported, stopped], key=str(session_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/continue-watching", response_model=list[ProgressOut], responses=PROBLEMS)
async def continue_watching(
    principal: Principal = Depends(history_reader), runtime: PlaybackRuntime = Depends(_runtime)
) -> list[ProgressOut]:
    """Titles this profile is part way through (5% to 90%), most recent first."""
    async with runtime.platform.db.session() as db_session:
        return await service.continue_watching(db_session=db_session, principal=principal)


@router.get("/history", response_model=list[ProgressOut], responses=PROBLEMS)
async def history(
    principal: Principal = Depends(history_reader), runtime: PlaybackRuntime = Depends(_runtime)
) -> list[ProgressOut]:
    """Everything this profile has played, most recent first, with watched marks."""
    async with runtime.platform.db.session() as db_session:
        return await service.history(db_session=db_session, principal=principal)


@router.put("/thumbs/{title_id}", response_model=ThumbOut, responses=PROBLEMS)
async def put_thumb(
    title_id: uuid.UUID,
    data: ThumbIn,
    principal: Principal = Depends(history_writer),
    runtime: PlaybackRuntime = Depends(_runtime),
) -> ThumbOut:
    """Thumbs up (1) or down (-1) on a title for this profile; 0 clears it."""
    out = await thumbs.set_thumb(
        ctx=runtime.ctx, principal=principal, title_id=title_id, thumb=data.thumb
    )
    await runtime.platform.events.emit(
        source=SOURCE,
        type="playback.thumb",
        subject=str(title_id),
        key=principal.profile_id,
        data={"profile_id": principal.profile_id, "title_id": str(title_id), "thumb": data.thumb},
    )
    return out


@router.get("/thumbs/{title_id}", response_model=ThumbOut, responses=PROBLEMS)
async def get_thumb(
    title_id: uuid.UUID,
    principal: Principal = Depends(history_reader),
    runtime: PlaybackRuntime = Depends(_runtime),
) -> ThumbOut:
    """This profile's thumb on a title (0 when it gave none)."""
    return await thumbs.get_thumb(ctx=runtime.ctx, principal=principal, title_id=title_id)


@router.post(
    "/activity",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedOut,
    responses=PROBLEMS,
)
async def activity(
    data: BrowseBatchIn,
    principal: Principal = Depends(history_writer),
    runtime: PlaybackRuntime = Depends(_runtime),
) -> AcceptedOut:
    """What the member saw and clicked while browsing, published as `browse.*` events."""
    service.member_and_profile(principal)  # browsing is a profile's, like playing
    events = runtime.platform.events
    common: dict[str, Any] = {"profile_id": principal.profile_id}
    out = []
    for item in data.events:
        body: dict[str, Any]
        if isinstance(item, Impression):
            type_, subject = "browse.impression", None
            body = {
                "surface": item.surface,
                "row": item.row,
                "title_ids": [str(t) for t in item.title_ids],
            }
        elif isinstance(item, Click):
            type_, subject = "browse.click", str(item.title_id)
            body = {
                "surface": item.surface,
                "row": item.row,
                "title_id": str(item.title_id),
                "rank": item.rank,
            }
        else:
            type_, subject = "browse.search", None
            body = {"query_chars": item.query_chars, "results": item.results}
        out.append(events.make(source=SOURCE, type=type_, subject=subject, data=common | body))
    await events.publish_many(out, key=principal.profile_id)
    return AcceptedOut(accepted=len(out))
