"""Zero trust in the standalone proxy: verify each request's token before any upstream work.

`ProxyAuth` wraps the same `EdgeAuthenticator` the in-process middleware uses (open-route
allow-list, `TokenVerifier`, signed identity headers) for the proxy's callback-driven
request path:

- `bearer(authorization)` and `is_open(method, path)` are synchronous;
- `cached(token)` answers a token verified recently without any crypto: a bounded LRU
  keyed by the token string, each entry kept at most `ttl_s` and never past the token's
  own expiry; `revoke_session` drops a session's entries along with telling the verifier;
- `verify(token)` is the slow path (the verifier: one Ed25519 verify, and a JWKS fetch only
  when the key is unknown or old), run as a task by the exchange; the result is cached.

The JWKS comes over HTTP, with httpx (the proxy imports no service): from a fixed URL when
one is configured, otherwise from the live pool that serves `/.well-known/jwks.json`
(accounts), trying its instances in turn. A key source that cannot be reached is
`Overloaded` (503 with Retry-After), unless the verifier still holds the key.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from reelscale.core.clock import Clock
from reelscale.core.errors import Overloaded, Unauthorized
from reelscale.core.identity import Principal, TokenVerifier
from reelscale.core.identity_headers import IdentityHeaders
from reelscale.edge.identity import EdgeAuthenticator, bearer_token

JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class EdgeTrust:
    """What the proxy needs to verify tokens and vouch for callers.

    `secret` is the platform secret the services derive the identity-header key from (read
    on first use); `jwks_url` None fetches keys from the pool serving `JWKS_PATH`."""

    secret: Callable[[], bytes]
    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_timeout_s: float = 2.0


class JwksSource:
    """Fetches the JWK Set from a URL, or from any instance of the pool that serves it."""

    def __init__(
        self,
        *,
        url: str | None,
        instances: Callable[[], Sequence[str]],
        timeout_s: float,
    ) -> None:
        self.url = url
        self.instances = instances  # base URLs (http://host:port), in the order to try
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), trust_env=False)
        self.fetches = 0
        self.failures = 0

    async def __call__(self) -> dict[str, Any]:
        urls = [self.url] if self.url else [base + JWKS_PATH for base in self.instances()]
        last: Exception | None = None
        for url in urls:
            self.fetches += 1
            try:
                response = await self._http.get(url)
                response.raise_for_status()
                body = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                self.failures += 1
                last = exc
                continue
            if isinstance(body, dict) and isinstance(body.get("keys"), list):
                return body
            self.failures += 1
            last = ValueError(f"{url} did not answer a JWK Set")
        raise Overloaded(f"the token key source is unreachable: {last}", retry_after=2)

    async def aclose(self) -> None:
        await self._http.aclose()


class _Entry:
    __slots__ = ("principal", "valid_until")

    def __init__(self, principal: Principal, valid_until: float) -> None:
        self.principal = principal
        self.valid_until = valid_until


class ProxyAuth:
    """Token verification with a short-lived cache, and the identity header to forward."""

    def __init__(
        self,
        trust: EdgeTrust,
        *,
        clock: Clock,
        jwks_instances: Callable[[], Sequence[str]],
        cache_size: int = 10_000,
        cache_ttl_s: float = 30.0,
    ) -> None:
        self.clock = clock
        self.jwks = JwksSource(
            url=trust.jwks_url, instances=jwks_instances, timeout_s=trust.jwks_timeout_s
        )
        self.verifier = TokenVerifier(
            fetch_jwks=self.jwks, issuer=trust.issuer, audience=trust.audience, clock=clock
        )
        self.identity_headers = IdentityHeaders(secret=trust.secret, clock=clock)
        self.authenticator = EdgeAuthenticator(
            verifier=self.verifier, identity_headers=self.identity_headers
        )
        self.cache_size = cache_size
        self.cache_ttl_s = cache_ttl_s
        self._cache: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0
        self.refused = 0

    def is_open(self, method: str, path: str) -> bool:
        return self.authenticator.is_open(method, path)

    @staticmethod
    def bearer(authorization: str | None) -> str:
        """The bearer token, or `Unauthorized`."""
        return bearer_token(authorization)

    def cached(self, token: str) -> Principal | None:
        """A principal verified from this very token a moment ago, if still valid."""
        entry = self._cache.get(token)
        if entry is None:
            self.misses += 1
            return None
        if entry.valid_until <= self.clock.now().timestamp():
            del self._cache[token]
            self.misses += 1
            return None
        self._cache.move_to_end(token)
        self.hits += 1
        return entry.principal

    async def verify(self, token: str) -> Principal:
        """Verify with the verifier (signature, expiry, audience, ...) and cache the result."""
        try:
            principal = await self.verifier.verify(token)
        except Unauthorized:
            self.refused += 1
            raise
        now = self.clock.now().timestamp()
        valid_until = min(principal.expires_at.timestamp(), now + self.cache_ttl_s)
        if valid_until > now and self.cache_size > 0:
            cache = self._cache
            cache[token] = _Entry(principal, valid_until)
            cache.move_to_end(token)
            while len(cache) > self.cache_size:
                cache.popitem(last=False)
        return principal

    def sign(self, principal: Principal, method: str, path: str) -> bytes:
        """The signed identity header's value for this request."""
        return self.identity_headers.sign(principal, method=method, path=path).encode("ascii")

    def revoke_session(self, session_id: str, until: datetime) -> None:
        """Refuse a signed-out session's tokens from now on, cached ones included."""
        self.verifier.revoke_session(session_id, until)
        stale = [t for t, e in self._cache.items() if e.principal.session_id == session_id]
        for token in stale:
            del self._cache[token]

    async def aclose(self) -> None:
        await self.jwks.aclose()
