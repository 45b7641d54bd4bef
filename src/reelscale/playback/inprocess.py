"""The playback client for callers in the same process."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from reelscale.playback.client import SignalRow
from reelscale.playback.models import PlaySession, Progress, Thumb
from reelscale.playback.runtime import PlaybackRuntime

Pair = tuple[uuid.UUID, uuid.UUID]


class InProcessSignals:
    def __init__(self, runtime: PlaybackRuntime) -> None:
        self._runtime = runtime

    async def recs_signals(self) -> list[SignalRow]:
        """One row per (profile, title) that was played or given a thumb."""
        sessions = select(
            PlaySession.profile_id, PlaySession.title_id, PlaySession.device
        ).order_by(PlaySession.started_at)
        async with self._runtime.platform.db.session() as db_session:
            progress = list(await db_session.scalars(select(Progress)))
            thumbs = {
                (t.profile_id, t.title_id): t for t in await db_session.scalars(select(Thumb))
            }
            plays: dict[Pair, int] = {}
            devices: dict[Pair, str] = {}  # the device of each pair's latest session
            for profile_id, title_id, device in await db_session.execute(sessions):
                pair = (profile_id, title_id)
                plays[pair] = plays.get(pair, 0) + 1
                devices[pair] = device
        rows = []
        for p in progress:
            pair = (p.profile_id, p.title_id)
            thumb = thumbs.pop(pair, None)
            rows.append(
                SignalRow(
                    profile_id=p.profile_id,
                    title_id=p.title_id,
                    position_s=p.position_s,
                    duration_s=p.duration_s,
                    watched=p.watched,
                    plays=plays.get(pair, 1),
                    thumb=thumb.thumb if thumb else 0,
                    device=devices.get(pair),
                    updated_at=max(p.updated_at, thumb.updated_at) if thumb else p.updated_at,
                )
            )
        for (profile_id, title_id), thumb in thumbs.items():  # thumbed, never played
            rows.append(
                SignalRow(
                    profile_id=profile_id,
                    title_id=title_id,
                    position_s=0.0,
                    duration_s=0.0,
                    watched=False,
                    plays=0,
                    thumb=thumb.thumb,
                    updated_at=thumb.updated_at,
                )
            )
        return rows
