"""Thumbs up and down: a profile's explicit verdict on a title, for recommendations."""

from __future__ import annotations

import uuid

from sqlalchemy import delete

from reelscale.core.identity import Principal
from reelscale.playback.models import Thumb
from reelscale.playback.schemas import ThumbOut
from reelscale.playback.service import PlaybackContext, member_and_profile


async def set_thumb(
    *, ctx: PlaybackContext, principal: Principal, title_id: uuid.UUID, thumb: int
) -> ThumbOut:
    """Record (or with 0, clear) the profile's thumb; the title must be one it may see."""
    _, profile_id = member_and_profile(principal)
    await ctx.catalog.title_summary(title_id)  # NotFound for a title that is not available
    now = ctx.clock.now()
    async with ctx.db.transaction() as db_session:
        if thumb == 0:
            await db_session.execute(
                delete(Thumb).where(Thumb.profile_id == profile_id, Thumb.title_id == title_id)
            )
        else:
            row = await db_session.get(Thumb, (profile_id, title_id))
            if row is None:
                db_session.add(
                    Thumb(profile_id=profile_id, title_id=title_id, thumb=thumb, updated_at=now)
                )
            else:
                row.thumb, row.updated_at = thumb, now
    return ThumbOut(title_id=title_id, thumb=thumb, updated_at=now)


async def get_thumb(*, ctx: PlaybackContext, principal: Principal, title_id: uuid.UUID) -> ThumbOut:
    _, profile_id = member_and_profile(principal)
    async with ctx.db.session() as db_session:
        row = await db_session.get(Thumb, (profile_id, title_id))
    if row is None:
        return ThumbOut(title_id=title_id, thumb=0, updated_at=None)
    return ThumbOut(title_id=title_id, thumb=row.thumb, updated_at=row.updated_at)
