"""Zero trust in the standalone edge proxy: tokens verified before any upstream work.

The proxy runs in the test's loop on a loopback port in front of real origins (asyncio
servers written here that record every request head as it arrived); the JWK Set comes from
an `accounts` origin over HTTP, as in production. The last test starts real processes:
accounts and catalog requiring the edge's identity header, behind `reelscale serve --roles
edge`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reelscale.core.clock import FakeClock
from reelscale.core.errors import Unauthorized
from reelscale.core.identity import Principal
from reelscale.core.identity_headers import IDENTITY_HEADER, IdentityHeaders
from reelscale.edge.proxy.auth import JWKS_PATH, EdgeTrust
from reelscale.edge.proxy.config import EdgeSettings
from reelscale.edge.proxy.server import ProxyServer
from tests.e2e.server import free_port, reelscale_env, running

SECRET = b"the platform secret shared by edge and services " * 2
ISSUER, AUDIENCE = "reelscale-accounts", "reelscale"
START = datetime(2026, 1, 1, tzinfo=UTC)

# --------------------------------------------------------------------------- keys, tokens


@dataclass
class Keys:
    kid: str = "key-1"
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwks(self) -> dict[str, Any]:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA"}
        return {"keys": [jwk]}

    def token(
        self,
        subject: str = "member-1",
        *,
        now: datetime = START,
        lives_s: float = 600,
        audience: str = AUDIENCE,
        issuer: str = ISSUER,
        session: str = "session-1",
        kid: str | None = None,
    ) -> str:
        claims = {
            "sub": subject,
            "iss": issuer,
            "aud": audience,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=lives_s)).timestamp()),
            "jti": uuid.uuid4().hex,
            "sid": session,
            "roles": ["member"],
            "scope": "catalog:read playback:play",
        }
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": kid or self.kid})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- origins


@dataclass
class Head:
    method: str
    target: str
    lines: list[tuple[str, str]]  # (lower-case name, value), as they arrived

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.lines if key == name]


@dataclass
class Origin:
    """HTTP/1.1 on loopback: answers the JWKS (when given one) and 200 to anything else."""

    jwks: dict[str, Any] | None = None
    seen: list[Head] = field(default_factory=list)
    jwks_fetches: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                first, *rest = raw.decode("latin-1").split("\r\n")
                method, target, _ = first.split(" ", 2)
                lines = []
                for line in rest:
                    if line:
                        name, _, value = line.partition(":")
                        lines.append((name.strip().lower(), value.strip()))
                head = Head(method, target, lines)
                length = int(dict(lines).get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                if self.jwks is not None and target == JWKS_PATH:
                    self.jwks_fetches += 1
                    body = orjson.dumps(self.jwks)
                else:
                    self.seen.append(head)
                    body = orjson.dumps({"target": target})
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def started(*origins: Origin) -> AsyncIterator[None]:
    for origin in origins:
        origin.server = await asyncio.start_server(origin._serve, "127.0.0.1", 0)
    try:
        yield
    finally:
        for origin in origins:
            assert origin.server is not None
            origin.server.close()


@contextlib.asynccontextmanager
async def edge(
    upstreams: str,
    *,
    clock: FakeClock | None = None,
    jwks_url: str | None = None,
    **settings: Any,
) -> AsyncIterator[ProxyServer]:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "timer_resolution_s": 0.02,
        "address_rate_per_s": 10_000,
        "address_burst": 10_000,
        "member_rate_per_s": 10_000,
        "member_burst": 10_000,
        "limit_initial": 200,
        "limit_min": 200,
        "limit_max": 200,
        "shutdown_grace_s": 1.0,
        "utilisation_shedding": False,
    }
    values.update(settings)
    trust = EdgeTrust(secret=lambda: SECRET, issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_url)
    proxy = ProxyServer(EdgeSettings(upstreams=upstreams, **values), clock=clock, trust=trust)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


@contextlib.asynccontextmanager
async def setup(
    keys: Keys, *, clock: FakeClock | None = None, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Origin, Origin, ProxyServer]]:
    """An edge with accounts (serving the JWKS) and default (the origin under test)."""
    accounts, origin = Origin(jwks=keys.jwks()), Origin()
    async with started(accounts, origin):
        upstreams = f"accounts={accounts.url};default={origin.url}"
        async with (
            edge(upstreams, clock=clock or FakeClock(START), **settings) as proxy,
            httpx.AsyncClient(base_url=proxy.url) as http,
        ):
            yield http, accounts, origin, proxy


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer realm="reelscale"'
    body: dict[str, Any] = response.json()
    assert body["status"] == 401
    assert body["type"] == "https://reelscale.dev/problems/unauthorized"
    assert body["request_id"] == response.headers["x-request-id"]
    return body


# --------------------------------------------------------------------------- refusals


async def test_no_token_is_refused_at_the_edge_and_never_reaches_the_origin() -> None:
    async with setup(Keys()) as (http, accounts, origin, _proxy):
        missing = await http.get("/v1/catalog/titles")
        basic = await http.get("/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        empty = await http.get("/v1/me", headers={"Authorization": "Bearer"})
        nowhere = await http.get("/no/such/route")  # unknown paths need a token too
        upload = await http.post("/v1/media/uploads", content=b"x" * 100_000)
        head = await http.head("/v1/catalog/titles")
    for response in (missing, basic, empty, nowhere, upload):
        assert_unauthorized(response)
    assert head.status_code == 401
    assert head.content == b""
    assert missing.json()["instance"] == "/v1/catalog/titles"
    assert origin.seen == []
    assert accounts.seen == []
    assert accounts.jwks_fetches == 0  # refused before any key was needed


async def test_garbage_expired_foreign_and_forged_tokens_are_refused() -> None:
    keys = Keys()
    impostor = Keys(kid=keys.kid)  # same key id, another private key
    async with setup(keys) as (http, accounts, origin, _proxy):
        cases = {
            "garbage": "not.a.token",
            "noise": "x" * 300,
            "expired": keys.token(now=START - timedelta(hours=1), lives_s=600),
            "audience": keys.token(audience="someone-else"),
            "issuer": keys.token(issuer="evil-accounts"),
            "forged": impostor.token(),
            "unknown key": keys.token(kid="key-404"),
            "too long": "a" * 5000,
        }
        answers = {
            name: await http.get("/v1/catalog/titles", headers=bearer(t))
            for name, t in cases.items()
        }
    details = {name: assert_unauthorized(r)["detail"] for name, r in answers.items()}
    assert "expired" in details["expired"]
    assert "audience" in details["audience"]
    assert "issuer" in details["issuer"]
    assert "signature" in details["forged"]
    assert "unknown key" in details["unknown key"]
    assert origin.seen == []
    assert accounts.jwks_fetches >= 1


async def test_open_routes_pass_without_a_token_and_a_forged_identity_is_stripped() -> None:
    async with setup(Keys()) as (http, accounts, origin, _proxy):
        forged = {IDENTITY_HEADER: "v1.eyJzdWIiOiJhZG1pbiJ9.AAAA"}
        answers = [
            await http.get("/healthz"),  # the proxy's own
            await http.get("/readyz", headers=forged),
            await http.post("/v1/auth/login", json={"email": "a@b.c"}, headers=forged),
            await http.get("/media/s/tok/1/sig/asset/seg-1.m4s"),
            await http.get("/v1/catalog/artwork/abc/poster.svg"),
            await http.get("/", headers={"X-Reelscale-Identity": "v1.x.y"}),
        ]
    assert [r.status_code for r in answers] == [200] * 6
    assert [h.target for h in accounts.seen] == ["/v1/auth/login"]
    assert [h.target for h in origin.seen] == [
        "/readyz",
        "/media/s/tok/1/sig/asset/seg-1.m4s",
        "/v1/catalog/artwork/abc/poster.svg",
        "/",
    ]
    for head in accounts.seen + origin.seen:
        assert head.values(IDENTITY_HEADER) == []


# --------------------------------------------------------------------------- identity


async def test_a_valid_token_reaches_the_origin_with_a_signed_identity_and_nothing_forged() -> None:
    keys, clock = Keys(), FakeClock(START)
    token = keys.token("member-7", session="s-7")
    async with setup(keys, clock=clock) as (http, _accounts, origin, proxy):
        first = await http.get(
            "/v1/catalog/titles?page=2",
            headers={
                **bearer(token),
                "X-Reelscale-Identity": "v1.forged.forged",
                "x-reelscale-identity": "v1.also.forged",
            },
        )
        posted = await http.post("/v1/playback/sessions", json={"x": 1}, headers=bearer(token))
        assert proxy.proxy.auth is not None
        stats = (proxy.proxy.auth.hits, proxy.proxy.auth.misses)
    assert first.status_code == 200, first.text
    assert posted.status_code == 200
    headers = IdentityHeaders(secret=lambda: SECRET, clock=clock)
    for head, method, path in zip(
        origin.seen,
        ("GET", "POST"),
        ("/v1/catalog/titles", "/v1/playback/sessions"),
        strict=True,
    ):
        (value,) = head.values(IDENTITY_HEADER)  # exactly one: the edge's
        principal = headers.verify(value, method=method, path=path)
        assert principal.subject == "member-7"
        assert principal.session_id == "s-7"
        assert principal.scopes == {"catalog:read", "playback:play"}
        assert head.values("authorization") == [f"Bearer {token}"]
        # Bound to its request: not valid on another route, nor under another key.
        with pytest.raises(Unauthorized):
            headers.verify(value, method=method, path="/v1/admin/members")
        other = IdentityHeaders(secret=lambda: b"another secret" * 4, clock=clock)
        with pytest.raises(Unauthorized):
            other.verify(value, method=method, path=path)
    assert stats == (1, 1)  # verified once, then answered from the cache


async def test_cached_tokens_expire_with_the_token_and_the_cache_ttl_and_on_revocation() -> None:
    keys, clock = Keys(), FakeClock(START)
    short = keys.token("member-1", lives_s=60, session="short")
    long = keys.token("member-2", lives_s=600, session="long")
    async with setup(keys, clock=clock, token_cache_ttl_s=30) as (http, _a, origin, proxy):
        auth = proxy.proxy.auth
        assert auth is not None
        assert (await http.get("/v1/catalog/titles", headers=bearer(short))).status_code == 200
        assert (await http.get("/v1/catalog/titles", headers=bearer(long))).status_code == 200
        clock.advance(31)  # past the cache's 30 s: verified again, still valid
        misses = auth.misses
        assert (await http.get("/v1/catalog/titles", headers=bearer(long))).status_code == 200
        assert auth.misses == misses + 1
        clock.advance(40)  # 71 s: the short token expired (beyond the verifier's leeway)
        assert_unauthorized(await http.get("/v1/catalog/titles", headers=bearer(short)))
        assert (await http.get("/v1/catalog/titles", headers=bearer(long))).status_code == 200
        # A signed-out session is refused at once, though its token sits in the cache.
        auth.revoke_session("long", START + timedelta(hours=1))
        assert (
            "signed out"
            in assert_unauthorized(await http.get("/v1/catalog/titles", headers=bearer(long)))[
                "detail"
            ]
        )
    assert len(origin.seen) == 4


async def test_the_cache_is_a_bounded_lru() -> None:
    keys = Keys()
    async with setup(keys, token_cache_size=2) as (http, _accounts, _origin, proxy):
        auth = proxy.proxy.auth
        assert auth is not None
        tokens = [keys.token(f"m-{i}") for i in range(3)]
        for token in tokens:
            assert (await http.get("/v1/catalog/titles", headers=bearer(token))).status_code == 200
        assert len(auth._cache) == 2
        assert tokens[0] not in auth._cache


async def test_per_member_rate_limits_apply_at_the_edge() -> None:
    keys = Keys()
    async with setup(keys, member_rate_per_s=0.001, member_burst=3) as (http, _a, origin, _p):
        one, two = keys.token("member-1"), keys.token("member-2")
        first = [
            (await http.get("/v1/catalog/titles", headers=bearer(one))).status_code
            for _ in range(5)
        ]
        # Same address, another member: their own allowance.
        second = [
            (await http.get("/v1/catalog/titles", headers=bearer(two))).status_code
            for _ in range(3)
        ]
        throttled = await http.get("/v1/catalog/titles", headers=bearer(one))
    assert first == [200, 200, 200, 429, 429]
    assert second == [200, 200, 200]
    assert throttled.headers["content-type"] == "application/problem+json"
    assert int(throttled.headers["retry-after"]) >= 1
    assert len(origin.seen) == 6


async def test_an_unreachable_key_source_is_503_with_retry_after() -> None:
    origin = Origin()
    async with (
        started(origin),
        edge(
            f"default={origin.url}",
            clock=FakeClock(START),
            jwks_url=f"http://127.0.0.1:{free_port()}{JWKS_PATH}",
        ) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as http,
    ):
        response = await http.get("/v1/catalog/titles", headers=bearer(Keys().token()))
        opened = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert opened.status_code == 200
    assert [h.target for h in origin.seen] == ["/readyz"]


# --------------------------------------------------------------------------- processes

PASSWORD = "a long enough password"


@contextlib.contextmanager
def edge_process(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelscale", "serve", "--roles", "edge"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"edge exited {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"edge not healthy:\n{log.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_services_requiring_the_edge_identity_serve_only_through_a_real_edge(
    tmp_path: Path,
) -> None:
    required = {"require_edge_identity": "true"}
    accounts_env = reelscale_env(tmp_path / "accounts", **required)
    with running(accounts_env, "accounts", log=tmp_path / "accounts.log") as accounts_url:
        catalog_env = reelscale_env(tmp_path / "catalog", accounts_url=accounts_url, **required)
        with running(catalog_env, "catalog", log=tmp_path / "catalog.log") as catalog_url:
            edge_env = reelscale_env(tmp_path / "edge")
            edge_env |= {
                "REELSCALE_EDGE_UPSTREAMS": (
                    f"accounts={accounts_url};catalog={catalog_url};default={accounts_url}"
                ),
                "REELSCALE_EDGE_PORT": str(free_port()),
                "REELSCALE_EDGE_LIMIT_INITIAL": "512",  # the suite's floor is 512
                "REELSCALE_LOG_LEVEL": "WARNING",
            }
            port = int(edge_env["REELSCALE_EDGE_PORT"])
            with (
                edge_process(edge_env, port, tmp_path / "edge.log") as edge_url,
                httpx.Client(base_url=edge_url, timeout=30) as through,
                httpx.Client(base_url=catalog_url, timeout=30) as direct,
            ):
                email = "viewer@example.com"
                credentials = {"email": email, "password": PASSWORD}
                assert through.post("/v1/auth/signup", json=credentials).status_code == 201
                login = through.post("/v1/auth/login", json=credentials)
                assert login.status_code == 200, login.text
                token = str(login.json()["access_token"])

                via_edge = through.get("/v1/catalog/genres", headers=bearer(token))
                assert via_edge.status_code == 200, via_edge.text
                me = through.get("/v1/me", headers=bearer(token))
                assert me.status_code == 200, me.text
                assert me.json()["email"] == email

                # The same request straight to the catalog: a valid token is not enough.
                skipped = direct.get("/v1/catalog/genres", headers=bearer(token))
                assert skipped.status_code == 401
                assert "through the edge" in skipped.json()["detail"]
                # Nor is an identity header made up by the client (or replayed elsewhere).
                value = IdentityHeaders(
                    secret=lambda: b"not the platform secret " * 3, clock=FakeClock()
                ).sign(_principal(), method="GET", path="/v1/catalog/genres")
                forged = direct.get("/v1/catalog/genres", headers={IDENTITY_HEADER: value})
                assert forged.status_code == 401
                # And the edge itself refuses a request without a token.
                assert through.get("/v1/catalog/genres").status_code == 401


def _principal() -> Principal:
    return Principal(
        subject="intruder",
        roles=frozenset({"admin"}),
        scopes=frozenset({"catalog:read"}),
        token_id="j",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
