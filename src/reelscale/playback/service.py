"""Play authorization, heartbeats, resume points and history.

Resume rules, as streaming services apply them: under 5% watched leaves no resume point
(the viewer was sampling); at 90% or more the title counts as watched and starts over next
time; in between, playback resumes where it stopped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from reelscale.catalog.client import Catalog
from reelscale.core.clock import Clock
from reelscale.core.db import Database
from reelscale.core.errors import Conflict, Forbidden, NotFound, TooManyRequests
from reelscale.core.identity import Principal
from reelscale.core.maturity import ADULT_LEVEL
from reelscale.media.client import Media
from reelscale.playback.models import PlaySession, Progress
from reelscale.playback.schemas import HeartbeatIn, PlayIn, PlayOut, ProgressOut
from reelscale.playback.signing import signed_prefix

RESUME_MIN_FRACTION = 0.05
WATCHED_FRACTION = 0.90
HEARTBEAT_S = 15
LIVE_WINDOW = timedelta(seconds=90)  # a session silent for longer no longer holds a stream
STREAMS_BY_PLAN = {"basic": 1, "standard": 2, "premium": 4}


@dataclass(frozen=True)
class PlaybackContext:
    db: Database
    clock: Clock
    catalog: Catalog
    media: Media
    media_key: bytes
    url_ttl_s: int


def _expires(ctx: PlaybackContext) -> int:
    return int(ctx.clock.now().timestamp()) + ctx.url_ttl_s


def member_and_profile(principal: Principal) -> tuple[uuid.UUID, uuid.UUID]:
    if principal.profile_id is None:
        raise Forbidden("pick a profile before playing")
    return uuid.UUID(principal.subject), uuid.UUID(principal.profile_id)


async def authorize(*, ctx: PlaybackContext, principal: Principal, data: PlayIn) -> PlayOut:
    """Entitlement, maturity and the plan's stream limit; then a session and signed URLs."""
    member_id, profile_id = member_and_profile(principal)
    title = await ctx.catalog.title_summary(data.title_id)  # NotFound when not available
    ceiling = principal.max_maturity if principal.max_maturity is not None else ADULT_LEVEL
    if title.maturity_level > ceiling:
        raise Forbidden("this title is not available on this profile")
    asset = await ctx.media.playable_asset(data.title_id)
    if asset is None:
        raise Conflict("this title is not ready to play yet")
    limit = STREAMS_BY_PLAN.get(principal.plan or "standard", 1)
    now = ctx.clock.now()
    async with ctx.db.transaction() as db_session:
        await _lock_member(db_session, member_id)
        live = await db_session.scalar(
            select(func.count())
            .select_from(PlaySession)
            .where(
                PlaySession.member_id == member_id,
                PlaySession.ended_at.is_(None),
                PlaySession.last_seen_at > now - LIVE_WINDOW,
            )
        )
        if (live or 0) >= limit:
            raise TooManyRequests(
                f"your plan allows {limit} stream{'s' if limit > 1 else ''} at once; "
                "stop playback on another screen",
                retry_after=LIVE_WINDOW.total_seconds(),
                streams_limit=limit,
            )
        session = PlaySession(
            id=uuid.uuid4(),
            member_id=member_id,
            profile_id=profile_id,
            title_id=data.title_id,
            asset_id=asset.asset_id,
            device=data.device,
            duration_s=asset.duration_s,
            position_s=0.0,
            started_at=now,
            last_seen_at=now,
        )
        db_session.add(session)
        progress = await db_session.get(Progress, (profile_id, data.title_id))
    resume = _resume_point(progress)
    expires = _expires(ctx)
    prefix = signed_prefix(
        ctx.media_key, session_id=session.id.hex, expires=expires, asset_id=asset.asset_id.hex
    )
    return PlayOut(
        session_id=session.id,
        title_id=data.title_id,
        asset_id=asset.asset_id,
        manifest_url=prefix + "master.m3u8",
        media_prefix=prefix,
        expires_at=datetime.fromtimestamp(expires, UTC),
        resume_at_s=resume,
        duration_s=asset.duration_s,
        heartbeat_interval_s=HEARTBEAT_S,
        poster_url=prefix + "poster.jpg" if asset.has_poster else None,
        thumbnails_url=prefix + "trickplay/thumbnails.vtt" if asset.has_thumbnails else None,
    )


def _resume_point(progress: Progress | None) -> float:
    if progress is None or progress.watched or progress.duration_s <= 0:
        return 0.0
    fraction = progress.position_s / progress.duration_s
    return progress.position_s if RESUME_MIN_FRACTION <= fraction < WATCHED_FRACTION else 0.0


async def _lock_member(db_session: AsyncSession, member_id: uuid.UUID) -> None:
    # Two screens pressing play at once must not both squeeze under the limit. SQLite's
    # single writer already serialises this; PostgreSQL needs a lock per member.
    if db_session.get_bind().dialect.name == "postgresql":
        await db_session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"streams:{member_id}"},
        )


async def heartbeat(
    *, ctx: PlaybackContext, principal: Principal, session_id: uuid.UUID, data: HeartbeatIn
) -> tuple[PlaySession, str, int, float]:
    """Record the position; returns the session, a freshly signed media prefix, its expiry
    and the title's duration."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as db_session:
        session = await _own_session(db_session, principal, session_id)
        if session.ended_at is not None:
            raise Conflict("this play session has ended; press play again")
        session.position_s = data.position_s
        session.last_seen_at = now
        duration = await _record_progress(ctx, db_session, session, data.position_s)
    expires = _expires(ctx)
    prefix = signed_prefix(
        ctx.media_key, session_id=session.id.hex, expires=expires, asset_id=session.asset_id.hex
    )
    return session, prefix, expires, duration


async def stop(
    *, ctx: PlaybackContext, principal: Principal, session_id: uuid.UUID, position_s: float
) -> tuple[PlaySession, float | None]:
    """End the session; returns it and the title's duration (None if it had ended)."""
    now = ctx.clock.now()
    duration = None
    async with ctx.db.transaction() as db_session:
        session = await _own_session(db_session, principal, session_id)
        if session.ended_at is None:
            session.position_s = position_s
            session.ended_at = now
            session.last_seen_at = now
            duration = await _record_progress(ctx, db_session, session, position_s)
        return session, duration


async def _own_session(
    db_session: AsyncSession, principal: Principal, session_id: uuid.UUID
) -> PlaySession:
    member_id, profile_id = member_and_profile(principal)
    session = await db_session.get(PlaySession, session_id)
    if session is None or session.member_id != member_id or session.profile_id != profile_id:
        raise NotFound("no such play session")
    return session


async def _record_progress(
    ctx: PlaybackContext, db_session: AsyncSession, session: PlaySession, position_s: float
) -> float:
    """Update the profile's progress on the title; returns the title's duration."""
    duration = max(session.duration_s, 0.001)
    position = min(position_s, duration)
    watched = position / duration >= WATCHED_FRACTION
    row = await db_session.get(Progress, (session.profile_id, session.title_id))
    now = ctx.clock.now()
    if row is None:
        db_session.add(
            Progress(
                profile_id=session.profile_id,
                title_id=session.title_id,
                position_s=position,
                duration_s=duration,
                watched=watched,
                updated_at=now,
            )
        )
    else:
        row.position_s, row.duration_s, row.updated_at = position, duration, now
        # A watched title stays watched through the opening of a rewatch; past 5% it is an
        # ordinary title in progress again.
        row.watched = watched or (row.watched and position / duration < RESUME_MIN_FRACTION)
    return duration


async def continue_watching(
    *, db_session: AsyncSession, principal: Principal, limit: int = 20
) -> list[ProgressOut]:
    _, profile_id = member_and_profile(principal)
    rows = await db_session.scalars(
        select(Progress)
        .where(Progress.profile_id == profile_id, Progress.watched.is_(False))
        .order_by(Progress.updated_at.desc())
    )
    out = [_progress_out(row) for row in rows if _resume_point(row) > 0]
    return out[:limit]


async def history(
    *, db_session: AsyncSession, principal: Principal, limit: int = 50
) -> list[ProgressOut]:
    _, profile_id = member_and_profile(principal)
    rows = await db_session.scalars(
        select(Progress)
        .where(Progress.profile_id == profile_id)
        .order_by(Progress.updated_at.desc())
        .limit(limit)
    )
    return [_progress_out(row) for row in rows]


def _progress_out(row: Progress) -> ProgressOut:
    fraction = row.position_s / row.duration_s if row.duration_s > 0 else 0.0
    return ProgressOut(
        title_id=row.title_id,
        position_s=row.position_s,
        duration_s=row.duration_s,
        fraction=round(fraction, 4),
        watched=row.watched,
        updated_at=row.updated_at,
    )


async def end_silent_sessions(*, db_session: AsyncSession, now: datetime) -> int:
    """Close sessions whose player went quiet, so they stop counting against the plan."""
    result = await db_session.execute(
        update(PlaySession)
        .where(PlaySession.ended_at.is_(None), PlaySession.last_seen_at <= now - LIVE_WINDOW)
        .values(ended_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
