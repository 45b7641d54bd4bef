"""The playback client for callers in the same process."""

from __future__ import annotations

from sqlalchemy import func, select

from reelscale.playback.client import SignalRow
from reelscale.playback.models import PlaySession, Progress
from reelscale.playback.runtime import PlaybackRuntime


class InProcessSignals:
    def __init__(self, runtime: PlaybackRuntime) -> None:
        self._runtime = runtime

    async def recs_signals(self) -> list[SignalRow]:
        plays = (
            select(PlaySession.profile_id, PlaySession.title_id, func.count().label("plays"))
            .group_by(PlaySession.profile_id, PlaySession.title_id)
            .subquery()
        )
        query = select(Progress, func.coalesce(plays.c.plays, 1)).outerjoin(
            plays,
            (plays.c.profile_id == Progress.profile_id) & (plays.c.title_id == Progress.title_id),
        )
        async with self._runtime.platform.db.session() as db_session:
            rows = await db_session.execute(query)
            return [
                SignalRow(
                    profile_id=p.profile_id,
                    title_id=p.title_id,
                    position_s=p.position_s,
                    duration_s=p.duration_s,
                    watched=p.watched,
                    plays=int(count),
                    updated_at=p.updated_at,
                )
                for p, count in rows
            ]
