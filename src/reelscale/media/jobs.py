"""The durable job queue, in the database: enqueue, lease, renew, finish, fail.

A worker owns a job only while its lease is fresh. A worker that dies (killed, crashed,
machine gone) stops renewing; once the lease lapses any worker may claim the job and
resume it, skipping whatever rungs were already published.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reelscale.media.models import Asset, Job

MAX_ATTEMPTS = 3


async def enqueue(*, db_session: AsyncSession, asset_id: uuid.UUID, now: datetime) -> Job:
    job = Job(
        id=uuid.uuid4(),
        asset_id=asset_id,
        state="queued",
        attempts=0,
        progress=0.0,
        stage="queued",
        created_at=now,
        updated_at=now,
    )
    db_session.add(job)
    await db_session.flush()
    return job


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    return or_(
        Job.state == "queued",
        and_(Job.state == "running", Job.lease_until < now),
    )


async def claim(
    *, db_session: AsyncSession, owner: str, lease_s: float, now: datetime
) -> Job | None:
    """Lease the oldest claimable job, or None. Safe when many workers race for it."""
    candidate = await db_session.scalar(
        select(Job.id).where(_claimable(now)).order_by(Job.created_at).limit(1)
    )
    if candidate is None:
        return None
    claimed = await db_session.execute(
        update(Job)
        .where(Job.id == candidate, _claimable(now))
        .values(
            state="running",
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease_s),
            attempts=Job.attempts + 1,
            updated_at=now,
        )
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None  # another worker won the race
    return await db_session.get(Job, candidate, populate_existing=True)


async def renew(
    *,
    db_session: AsyncSession,
    job_id: uuid.UUID,
    owner: str,
    lease_s: float,
    now: datetime,
    progress: float,
    stage: str,
) -> bool:
    """Extend the lease and record progress; False if the lease was lost."""
    result = await db_session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.state == "running")
        .values(
            lease_until=now + timedelta(seconds=lease_s),
            progress=progress,
            stage=stage,
            updated_at=now,
        )
    )
    return getattr(result, "rowcount", 0) == 1


async def finish(*, db_session: AsyncSession, job_id: uuid.UUID, owner: str, now: datetime) -> bool:
    result = await db_session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner)
        .values(state="done", progress=1.0, stage="done", lease_until=None, updated_at=now)
    )
    return getattr(result, "rowcount", 0) == 1


async def release(
    *, db_session: AsyncSession, job_id: uuid.UUID, owner: str, now: datetime
) -> None:
    """Give a running job back to the queue (a clean shutdown), without counting a failure."""
    await db_session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.state == "running")
        .values(
            state="queued",
            lease_owner=None,
            lease_until=None,
            stage="requeued",
            attempts=Job.attempts - 1,
            updated_at=now,
        )
    )


async def fail(*, db_session: AsyncSession, job: Job, owner: str, error: str, now: datetime) -> str:
    """Record a failure: back to the queue while attempts remain, else failed for good."""
    final = job.attempts >= MAX_ATTEMPTS
    state = "failed" if final else "queued"
    await db_session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_owner == owner)
        .values(
            state=state,
            error=error[-2000:],
            lease_owner=None,
            lease_until=None,
            stage="failed" if final else "retrying",
            updated_at=now,
        )
    )
    if final:
        asset = await db_session.get(Asset, job.asset_id)
        if asset is not None and asset.state != "playable":
            asset.state = "failed"
            asset.updated_at = now
    return state
