"""Transcode workers: a fixed number of slots, each leasing and running one job at a time.

The encoding itself runs in ffmpeg child processes; the slots bound how many run at once.
A slot renews its job's lease every few seconds while ffmpeg works. On shutdown the slot
is cancelled, ffmpeg is killed, and the job's lease simply lapses, so another worker (or
this one, restarted) resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass

from reelscale.core.events import EventPublisher
from reelscale.core.lifecycle import Service
from reelscale.core.metrics import Metrics
from reelscale.media import jobs
from reelscale.media.pipeline import PipelineContext, run_job

log = logging.getLogger("reelscale.media.workers")
SOURCE = "reelscale/media"
LEASE_S = 45.0
RENEW_S = 1.0  # also how fresh the progress the API shows is


class TranscodeWorkers(Service):
    name = "transcode-workers"

    def __init__(
        self,
        ctx: PipelineContext,
        *,
        slots: int,
        events: EventPublisher,
        metrics: Metrics | None = None,
        poll_s: float = 1.0,
        lease_s: float = LEASE_S,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.lease_s = lease_s
        self.events = events
        self.poll_s = poll_s
        self.owner_prefix = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = asyncio.Event()
        for slot in range(slots):
            self.supervise(f"slot-{slot}", self._slot_loop(slot), metrics=metrics)

    def wake(self) -> None:
        """A job was just queued: look now instead of at the next poll."""
        self._wake.set()

    def _slot_loop(self, slot: int):  # type: ignore[no-untyped-def]
        owner = f"{self.owner_prefix}:{slot}:{uuid.uuid4().hex[:6]}"

        async def loop() -> None:
            while True:
                ran = await self.run_one(owner)
                if not ran:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
                    self._wake.clear()

        return loop

    async def run_one(self, owner: str) -> bool:
        """Claim and run one job; False if there was none."""
        clock = self.ctx.clock
        async with self.ctx.db.transaction() as db_session:
            job = await jobs.claim(
                db_session=db_session, owner=owner, lease_s=self.lease_s, now=clock.now()
            )
        if job is None:
            return False
        state = _JobProgress()
        await self._emit(
            "media.job.started", job.asset_id, {"job_id": str(job.id), "attempt": job.attempts}
        )

        async def report(stage: str, progress: float) -> None:
            state.stage, state.progress = stage, progress

        async def keep_lease() -> None:
            while True:
                await asyncio.sleep(RENEW_S)
                async with self.ctx.db.transaction() as db_session:
                    ok = await jobs.renew(
                        db_session=db_session,
                        job_id=job.id,
                        owner=owner,
                        lease_s=self.lease_s,
                        now=clock.now(),
                        progress=state.progress,
                        stage=state.stage,
                    )
                if not ok:
                    raise LostLease(f"lease on job {job.id} was lost")

        async def report_now(stage: str, progress: float) -> None:
            # Record stage changes at once so the API shows them without waiting a tick.
            changed = stage != state.stage
            await report(stage, progress)
            if changed:
                async with self.ctx.db.transaction() as db_session:
                    await jobs.renew(
                        db_session=db_session,
                        job_id=job.id,
                        owner=owner,
                        lease_s=self.lease_s,
                        now=clock.now(),
                        progress=progress,
                        stage=stage,
                    )

        work = asyncio.create_task(
            run_job(self.ctx, job_id=job.id, asset_id=job.asset_id, report=report_now)
        )
        lease = asyncio.create_task(keep_lease())
        try:
            done, _ = await asyncio.wait({work, lease}, return_when=asyncio.FIRST_COMPLETED)
            if lease in done:
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                lease.result()  # raises LostLease
            await work
        except asyncio.CancelledError:
            # Shutting down: hand the job back at once rather than make the next worker
            # wait for the lease to lapse. Published rungs are kept; the rest redo.
            work.cancel()
            lease.cancel()
            async with self.ctx.db.transaction() as db_session:
                await jobs.release(
                    db_session=db_session, job_id=job.id, owner=owner, now=clock.now()
                )
            raise
        except Exception as exc:
            lease.cancel()
            log.exception("transcode failed", extra={"job_id": str(job.id)})
            async with self.ctx.db.transaction() as db_session:
                outcome = await jobs.fail(
                    db_session=db_session,
                    job=job,
                    owner=owner,
                    error=f"{type(exc).__name__}: {exc}",
                    now=clock.now(),
                )
            await self._emit(
                "media.job.failed",
                job.asset_id,
                {"job_id": str(job.id), "error": str(exc)[-300:], "state": outcome},
            )
            return True
        lease.cancel()
        async with self.ctx.db.transaction() as db_session:
            await jobs.finish(db_session=db_session, job_id=job.id, owner=owner, now=clock.now())
        await self._emit("media.job.finished", job.asset_id, {"job_id": str(job.id)})
        return True

    async def _emit(self, type_: str, asset_id: uuid.UUID, data: dict[str, object]) -> None:
        await self.events.emit(source=SOURCE, type=type_, subject=str(asset_id), data=data)


@dataclass
class _JobProgress:
    stage: str = "starting"
    progress: float = 0.0


class LostLease(Exception):
    """Another worker took the job over (our lease lapsed); stop working on it."""
