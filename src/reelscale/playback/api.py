"""Playback HTTP routes: press play, heartbeats, stop, continue watching, history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request, Response, status

from reelscale.core.auth import requires
from reelscale.core.identity import Principal, Scope
from reelscale.core.problems import STANDARD_RESPONSES
from reelscale.playback import service
from reelscale.playback.runtime import SOURCE, PlaybackRuntime
from reelscale.playback.schemas import (
    HeartbeatIn,
    HeartbeatOut,
    PlayIn,
    PlayOut,
    ProgressOut,
    StopIn,
)

router = APIRouter(prefix="/v1/playback", tags=["playback"])
PROBLEMS = STANDARD_RESPONSES

player = requires(Scope.PLAYBACK_PLAY)
history_reader = requires(Scope.HISTORY_READ)


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
    out = await service.authorize(ctx=runtime.ctx, principal=principal, data=data)
    await runtime.platform.events.emit(
        source=SOURCE,
        type="playback.started",
        subject=str(out.title_id),
        data={
            "session_id": str(out.session_id),
            "profile_id": principal.profile_id,
            "member_id": principal.subject,
            "resume_at_s": out.resume_at_s,
            "device": data.device,
        },
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
    await runtime.platform.events.emit(
        source=SOURCE,
        type="playback.heartbeat",
        subject=str(session.title_id),
        data={
            "session_id": str(session_id),
            "profile_id": principal.profile_id,
            "position_s": data.position_s,
            "state": data.state,
            "rendition": data.rendition,
            "duration_s": duration,
        },
    )
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
    await runtime.platform.events.emit(
        source=SOURCE,
        type="playback.stopped",
        subject=str(session.title_id),
        data={
            "session_id": str(session_id),
            "profile_id": principal.profile_id,
            "position_s": data.position_s,
            "duration_s": duration,
        },
    )
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
