"""Sign-outs reach the standalone proxy through the event stream, as they reach services.

A service learns of a revoked session from `auth.session.revoked` on the `auth` stream
(its `revocations-<instance>` function); the proxy verifies tokens itself, so it must too,
or a signed-out token would keep working at the edge until it expires. `RevocationFollower`
is the proxy's small consumer for that one event type, in its own consumer group
(`edge-revocations-<instance>`), calling `ProxyAuth.revoke_session` (which also drops the
session's cached tokens).

A group that has never run starts one access-token lifetime back, so a sign-out made just
before the proxy started is still applied; after that it resumes from its checkpoint. On
every start the proxy also re-reads that last lifetime once (`events.catchup`), so the
sign-outs it had applied before a restart are applied again.

The store is opened in a supervised task, not at start: a proxy whose stream is down (or
whose `auth` stream does not exist yet, before the first service has started) still
serves, and follows once it can, retrying with backoff. Only a shared stream (NATS) is
followed: the embedded log belongs to the one process that holds its lock.

The event store is imported only when there is a stream to follow: the proxy otherwise
starts without loading it (pyproject's import contract for the proxy names this module as
its one way into `reelscale.events`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from reelscale.core.clock import Clock
from reelscale.core.identity import parse_revocation
from reelscale.core.lifecycle import Service
from reelscale.edge.proxy.auth import ProxyAuth

if TYPE_CHECKING:
    from reelscale.events.records import Record
    from reelscale.events.store import EventStore

log = logging.getLogger("reelscale.edge.proxy")

REVOKED = "auth.session.revoked"
AUTH_STREAM = "auth"
SHARED_STREAM_SCHEMES = frozenset({"nats", "tls"})
_GROUP_PREFIX = "edge-revocations-"
_MAX_GROUP_CHARS = 48  # the event store's limit on group names


@dataclass(frozen=True)
class RevocationFeed:
    """Where the proxy hears of sign-outs: an (unstarted) event store and its group."""

    store: EventStore
    group: str
    token_ttl_s: float
    stream: str = AUTH_STREAM


def revocation_feed(
    stream_url: str | None,
    *,
    instance: str,
    token_ttl_s: float,
    data_dir: Path,
    clock: Clock | None = None,
) -> RevocationFeed | None:
    """The feed for a shared stream URL; None (logged once) when there is none to follow."""
    scheme = urlsplit(stream_url).scheme if stream_url else ""
    if scheme not in SHARED_STREAM_SCHEMES:
        log.warning(
            "the edge does not follow revocations: no shared event stream is configured "
            "(set REELSCALE_STREAM_URL=nats://...); a signed-out token is refused here only "
            "once it expires",
            extra={"stream_url": stream_url or "embedded"},
        )
        return None
    from reelscale.events.backends import event_store_from_url

    store = event_store_from_url(stream_url, data_dir=data_dir, clock=clock)
    return RevocationFeed(store=store, group=group_name(instance), token_ttl_s=token_ttl_s)


def group_name(instance: str) -> str:
    """`edge-revocations-<instance>`, made a valid group name (lower-case, bounded)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", instance.lower()).strip("-") or "edge"
    return (_GROUP_PREFIX + cleaned)[:_MAX_GROUP_CHARS].rstrip("-")


def instance_for(*, instance: str | None, default: str, reuse_port: bool) -> str:
    """This proxy's name among its peers. Processes sharing a port (REUSE_PORT) share
    every setting, so each adds its pid: one group per process, or they would split the
    revocations between them."""
    name = instance or default
    return f"{name}-p{os.getpid()}" if reuse_port else name


class RevocationFollower(Service):
    """Reads `auth.session.revoked` and revokes the session at the proxy."""

    name = "edge.revocations"

    def __init__(self, feed: RevocationFeed, *, auth: ProxyAuth, clock: Clock) -> None:
        from reelscale.events.consumer import GroupConsumer
        from reelscale.events.records import StartAt

        super().__init__()
        self.store = feed.store
        self.auth = auth
        self.group = feed.group
        self.token_ttl_s = feed.token_ttl_s
        self.clock = clock
        self.stream = feed.stream
        self.consumer = GroupConsumer(
            feed.store,
            feed.stream,
            group=feed.group,
            start=StartAt.at_timestamp(clock.now() - timedelta(seconds=feed.token_ttl_s)),
        )
        self.applied = 0
        self.skipped = 0
        self.supervise("follow", self._follow, max_backoff_s=5.0)

    async def _follow(self) -> None:
        from reelscale.events.catchup import catch_up

        if not self.store.started:
            await self.store.start()
        try:
            await catch_up(
                self.store,
                self.stream,
                group=f"{self.group[: _MAX_GROUP_CHARS - 8]}-catchup",
                since=self.clock.now() - timedelta(seconds=self.token_ttl_s),
                handle=self.apply,
            )
        except TimeoutError:
            # Not worth holding the live follower back for: it is what keeps up from now.
            log.warning("could not re-read recent revocations in time; following the stream")
        try:
            await self.consumer.run(self.apply, stop=asyncio.Event())
        finally:
            await self.consumer.close()

    async def apply(self, batch: list[Record]) -> None:
        """Revoke each well-formed revocation's session; skip anything else."""
        for record in batch:
            event = record.event
            if event.type != REVOKED:
                continue
            revoked = parse_revocation(event.data)
            if revoked is None:
                self.skipped += 1
                log.warning("skipping a malformed revocation", extra={"event_id": event.id})
                continue
            self.auth.revoke_session(*revoked)
            self.applied += 1

    async def on_stop(self) -> None:
        if self.store.started:
            await self.store.stop()
