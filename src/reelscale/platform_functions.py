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

import hashlib
import logging
from datetime import timedelta

from reelscale.core.clock import Clock
from reelscale.core.identity import TokenVerifier, parse_revocation
from reelscale.core.lifecycle import Service
from reelscale.events.catchup import catch_up
from reelscale.events.records import Record, StartAt
from reelscale.events.store import EventStore
from reelscale.functions import FunctionRegistry
from reelscale.recs.serving import RecsService

log = logging.getLogger("reelscale.auth")

AUTH_STREAM = "auth"
REVOKED = "auth.session.revoked"
MAX_GROUP_CHARS = 48  # events.records' limit on group names


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
    token that could still be presented; after that it resumes from its checkpoint. What
    it had applied before a restart is read again by `RevocationCatchUp`.
    """
    apply = revocation_applier(verifier)
    registry.function(
        f"revocations-{instance}",
        stream=AUTH_STREAM,
        types=(REVOKED,),
        batch_size=100,
        batch_window_s=0.0,  # a revocation takes effect as soon as it is read
        start=StartAt.at_timestamp(clock.now() - timedelta(seconds=token_ttl_s)),
        dead_letter=True,
    )(apply)


def revocation_applier(verifier: TokenVerifier):  # type: ignore[no-untyped-def]
    """The handler that revokes each `auth.session.revoked` record's session."""

    async def apply(batch: list[Record]) -> None:
        for record in batch:
            if record.event.type != REVOKED:
                continue
            revoked = parse_revocation(record.event.data)
            if revoked is None:
                log.warning("skipping a malformed revocation", extra={"event_id": record.event.id})
                continue
            verifier.revoke_session(*revoked)

    return apply


class RevocationCatchUp(Service):
    """At start, re-read the revocations of the last token lifetime (see events/catchup.py).

    The process is not ready before this has run, so it never accepts a token it had
    already seen revoked before a restart. If the stream cannot be read in time, the
    process starts anyway (with an error logged): the revocations function still follows
    the stream, and refusing to start would turn a stream outage into a full outage.
    """

    name = "auth.revocations.catch-up"

    def __init__(
        self,
        store: EventStore,
        *,
        verifier: TokenVerifier,
        instance: str,
        clock: Clock,
        token_ttl_s: float,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        self.store = store
        self.apply = revocation_applier(verifier)
        self.group = _catch_up_group(instance)
        self.clock = clock
        self.token_ttl_s = token_ttl_s
        self.timeout_s = timeout_s
        self.read = 0

    async def on_start(self) -> None:
        since = self.clock.now() - timedelta(seconds=self.token_ttl_s)
        try:
            self.read = await catch_up(
                self.store,
                AUTH_STREAM,
                group=self.group,
                since=since,
                handle=self.apply,
                timeout_s=self.timeout_s,
            )
        except Exception:
            log.exception("could not re-read recent revocations; following the stream only")


def _catch_up_group(instance: str) -> str:
    """`revocations-<instance>-catchup`, or a digest of the instance if that is too long."""
    name = f"revocations-{instance}-catchup"
    if len(name) <= MAX_GROUP_CHARS:
        return name
    return f"revocations-{hashlib.sha256(instance.encode()).hexdigest()[:16]}-catchup"


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
