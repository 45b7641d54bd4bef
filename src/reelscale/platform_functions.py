"""The functions the platform runs on its own streams (the consumers of its events).

Each is an ordinary `reelscale.functions` function, registered by `create_app` for the
roles a process runs:

  revocations-<instance>  auth       every process that verifies tokens learns of revoked
                                     sessions, whichever process revoked them
  recs-live               playback   the recommender's live overlay (resume marks, thumbs,
                                     trending) between model builds
  recs-catalog            catalog    a new or changed title asks for a model rebuild, so it
                                     appears in rows within a minute, not at the hourly build
  recs-profiles           platform   a profile's new onboarding picks lead its next home page
                                     (`profile.picks_updated` from accounts)
  analytics-*             playback, metrics   live windowed aggregates (`reelscale.analytics`)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from reelscale.core.clock import Clock
from reelscale.core.identity import TokenVerifier
from reelscale.events.records import Record, StartAt
from reelscale.functions import FunctionRegistry
from reelscale.recs.serving import RecsService


def register_revocations(
    registry: FunctionRegistry,
    *,
    verifier: TokenVerifier,
    instance: str,
    clock: Clock,
    token_ttl_s: float,
) -> None:
    """One consumer group per process: every process must see every revocation.

    A process that has never run starts one token lifetime back, which covers every
    token that could still be presented; after that it resumes from its checkpoint.
    """

    async def apply(batch: list[Record]) -> None:
        for record in batch:
            data = record.event.data
            session_id, until = data.get("session_id"), data.get("until")
            if isinstance(session_id, str) and isinstance(until, str):
                verifier.revoke_session(session_id, datetime.fromisoformat(until))

    registry.function(
        f"revocations-{instance}",
        stream="auth",
        types=("auth.session.revoked",),
        batch_size=100,
        batch_window_s=0.0,  # a revocation takes effect as soon as it is read
        start=StartAt.at_timestamp(clock.now() - timedelta(seconds=token_ttl_s)),
        dead_letter=True,
    )(apply)


def register_recs(registry: FunctionRegistry, recs: RecsService) -> None:
    async def live(batch: list[Record]) -> None:
        await recs.on_events([record.event for record in batch])

    async def catalog_changed(batch: list[Record]) -> None:
        recs.request_rebuild(f"{len(batch)} catalog change(s), first {batch[0].event.type}")

    registry.function(
        "recs-live",
        stream="playback",
        types=("playback.",),
        batch_size=500,
        batch_window_s=0.1,
        start=StartAt.latest(),  # the first build reads the database; only news matters
    )(live)
    registry.function(
        "recs-profiles",
        # `profile.*` has no stream of its own: picks change once per new profile, a trickle
        # that the shared `platform` stream carries without a stream to size and retain.
        stream="platform",
        types=("profile.picks_updated",),
        batch_size=100,
        batch_window_s=0.0,  # the member is waiting for the page the picks were for
        start=StartAt.latest(),  # older picks are in the database the first build reads
    )(live)
    registry.function(
        "recs-catalog",
        stream="catalog",
        types=("catalog.",),
        batch_size=100,
        batch_window_s=0.5,
        start=StartAt.latest(),
    )(catalog_changed)
