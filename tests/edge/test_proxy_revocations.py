"""Sign-outs reach the standalone proxy through the event stream (edge/proxy/revocations.py).

The proxy runs in the test's loop, verifying real tokens against a JWKS origin, and follows
a stream of its own on the real NATS JetStream (REELSCALE_TEST_NATS_URL): the test plays
accounts by putting `auth.session.revoked` events there, exactly as accounts writes them.
tests/e2e/test_edge_revocations.py does the same with a real accounts process and
`reelscale serve --roles edge`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from reelscale.core.events import CloudEvent
from reelscale.edge.proxy.auth import EdgeTrust
from reelscale.edge.proxy.config import EdgeSettings
from reelscale.edge.proxy.revocations import (
    REVOKED,
    RevocationFeed,
    group_name,
    instance_for,
    revocation_feed,
)
from reelscale.edge.proxy.server import ProxyServer
from reelscale.events.nats import NatsEventStore
from tests.conftest import server_unreachable
from tests.edge.test_proxy_auth import AUDIENCE, ISSUER, SECRET, Keys, Origin, bearer, started

NATS_URL = os.environ.get("REELSCALE_TEST_NATS_URL", "nats://127.0.0.1:4222")


@dataclass
class Edge:
    http: httpx.AsyncClient
    proxy: ProxyServer
    origin: Origin
    writer: NatsEventStore  # plays accounts: puts revocations on the stream
    stream: str
    keys: Keys

    async def revoke(self, session_id: str, **data: Any) -> None:
        until = datetime.now(UTC) + timedelta(minutes=16)
        body = {"session_id": session_id, "reason": "logout", "until": until.isoformat(), **data}
        await self.put({k: v for k, v in body.items() if v is not None})

    async def put(self, data: dict[str, Any], type_: str = REVOKED) -> None:
        await put_event(self.writer, self.stream, data, type_)

    def token(self, session: str) -> dict[str, str]:
        return bearer(self.keys.token(now=datetime.now(UTC), session=session))

    async def status_becomes(self, expected: int, headers: dict[str, str]) -> int:
        """Poll until the edge answers `expected` (or give up after a generous while)."""
        status = 0
        for _ in range(200):
            status = (await self.http.get("/v1/catalog/genres", headers=headers)).status_code
            if status == expected:
                break
            await asyncio.sleep(0.05)
        return status


async def put_event(
    writer: NatsEventStore, stream: str, data: dict[str, Any], type_: str = REVOKED
) -> None:
    """An event as accounts publishes it (`accounts.service.announce_revocation`)."""
    event = CloudEvent(
        id=uuid.uuid4().hex, source="tests", type=type_, time=datetime.now(UTC), data=data
    )
    await writer.put(stream, event, partition_key="member-1")


async def nats_store() -> NatsEventStore:
    store = NatsEventStore(NATS_URL, connect_timeout_s=2, max_reconnect_attempts=1)
    try:
        url = urlsplit(NATS_URL)
        _, probe = await asyncio.wait_for(
            asyncio.open_connection(url.hostname, url.port or 4222), 2
        )
        probe.close()
        await probe.wait_closed()
        await asyncio.wait_for(store.start(), 5)
    except Exception as exc:
        server_unreachable(f"NATS at {NATS_URL}", exc)
        raise
    return store


@contextlib.asynccontextmanager
async def following_edge(before_start: list[dict[str, Any]] | None = None) -> AsyncIterator[Edge]:
    """An edge following its own stream; `before_start` revocations are put first."""
    run = uuid.uuid4().hex[:8]
    stream = f"auth-test-{run}"
    writer = await nats_store()
    keys = Keys()
    accounts, origin = Origin(jwks=keys.jwks()), Origin()
    try:
        await writer.create_stream(stream, shards=2)
        async with started(accounts, origin):
            for data in before_start or []:
                await put_event(writer, stream, data)
            feed = RevocationFeed(
                store=NatsEventStore(NATS_URL, connect_timeout_s=2),
                group=group_name(f"t{run}"),
                token_ttl_s=900,
                stream=stream,
            )
            settings = EdgeSettings(
                upstreams=f"accounts={accounts.url};default={origin.url}",
                host="127.0.0.1",
                port=0,
                timer_resolution_s=0.02,
                limit_initial=200,
                limit_min=200,
                limit_max=200,
                shutdown_grace_s=1.0,
                utilisation_shedding=False,
            )
            trust = EdgeTrust(secret=lambda: SECRET, issuer=ISSUER, audience=AUDIENCE)
            proxy = ProxyServer(settings, trust=trust, revocations=feed)
            await proxy.start()
            try:
                async with httpx.AsyncClient(base_url=proxy.url) as http:
                    yield Edge(http, proxy, origin, writer, stream, keys)
            finally:
                await proxy.stop()
            assert not feed.store.started, "the proxy closes the store it opened"
    finally:
        with contextlib.suppress(Exception):
            await writer.delete_stream(stream)
        await writer.stop()


async def test_a_sign_out_on_the_stream_is_refused_at_the_proxy_cached_token_or_not() -> None:
    async with following_edge() as edge:
        signed_in = edge.token("session-leaving")
        other = edge.token("session-staying")
        assert (await edge.http.get("/v1/catalog/genres", headers=signed_in)).status_code == 200
        assert (await edge.http.get("/v1/catalog/genres", headers=other)).status_code == 200

        await edge.revoke("session-leaving")
        assert await edge.status_becomes(401, signed_in) == 401
        reached = len(edge.origin.seen)
        refused = await edge.http.get("/v1/catalog/genres", headers=signed_in)
        assert refused.status_code == 401
        assert "signed out" in refused.json()["detail"]
        # The refused requests never reached the origin; another session is unaffected.
        assert len(edge.origin.seen) == reached
        assert (await edge.http.get("/v1/catalog/genres", headers=other)).status_code == 200
        follower = edge.proxy.revocations
        assert follower is not None
        assert follower.applied == 1


async def test_a_sign_out_made_before_the_proxy_started_is_applied() -> None:
    until = (datetime.now(UTC) + timedelta(minutes=16)).isoformat()
    early = {"session_id": "session-early", "until": until}
    async with following_edge(before_start=[early]) as edge:
        assert await edge.status_becomes(401, edge.token("session-early")) == 401
        assert (await edge.http.get("/v1/me", headers=edge.token("s2"))).status_code == 200


async def test_malformed_revocations_are_skipped_and_following_goes_on() -> None:
    until = (datetime.now(UTC) + timedelta(minutes=16)).isoformat()
    naive = datetime.now().replace(tzinfo=None).isoformat()
    bad = [
        {"until": until},  # no session
        {"session_id": "s", "until": "yesterday"},
        {"session_id": "s", "until": naive},  # no time zone
        {"session_id": "x" * 500, "until": until},
        {"session_id": 7, "until": until},
        {"session_id": "s", "until": 12},
    ]
    async with following_edge(before_start=bad) as edge:
        await edge.put({"session_id": "ignored", "until": until}, type_="auth.login.succeeded")
        await edge.revoke("session-after-garbage")
        assert await edge.status_becomes(401, edge.token("session-after-garbage")) == 401
        follower = edge.proxy.revocations
        assert follower is not None
        # Read twice at a first start: by the catch-up and by the new group, which also
        # starts one token lifetime back. The later revocation may come once or twice.
        assert follower.skipped == 2 * len(bad)
        assert follower.applied in (1, 2)
        assert (await edge.http.get("/v1/me", headers=edge.token("s"))).status_code == 200


def test_without_a_shared_stream_revocations_are_not_followed_and_it_says_so(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    for url in (None, "", "embedded", f"embedded://{tmp_path}"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="reelscale.edge.proxy"):
            feed = revocation_feed(url, instance="e1", token_ttl_s=900, data_dir=tmp_path)
        assert feed is None
        warnings = [r for r in caplog.records if "does not follow revocations" in r.message]
        assert len(warnings) == 1
    feed = revocation_feed(NATS_URL, instance="e1", token_ttl_s=900, data_dir=tmp_path)
    assert feed is not None
    assert (feed.group, feed.stream) == ("edge-revocations-e1", "auth")
    assert not feed.store.started  # opened later, in the background


def test_group_names_are_valid_and_distinct_per_process_sharing_a_port() -> None:
    assert group_name("Edge_Host.example-8080") == "edge-revocations-edge-host-example-8080"
    assert len(group_name("a" * 60)) == 48
    assert group_name("!!!") == "edge-revocations-edge"
    assert instance_for(instance=None, default="host-8080", reuse_port=False) == "host-8080"
    shared = instance_for(instance="edge-a", default="host-8080", reuse_port=True)
    assert shared == f"edge-a-p{os.getpid()}"
