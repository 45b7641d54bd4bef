"""Who is calling: access-token claims, scopes, and the verifier every service runs.

Accounts signs access tokens (EdDSA, `kid` in the header) and publishes its public keys as
a JWKS. Every other service verifies tokens locally against that JWKS, so no request needs
a round trip to accounts, and keys rotate by publishing a new key before signing with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import jwt
from jwt.algorithms import OKPAlgorithm

from reelscale.core.clock import Clock
from reelscale.core.errors import Forbidden, PlatformError, Unauthorized

ALGORITHM = "EdDSA"
log = logging.getLogger("reelscale.identity")


class Scope(StrEnum):
    ACCOUNT_READ = "account:read"
    ACCOUNT_WRITE = "account:write"
    PROFILES_READ = "profiles:read"
    PROFILES_WRITE = "profiles:write"
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    MEDIA_WRITE = "media:write"
    PLAYBACK_PLAY = "playback:play"
    HISTORY_READ = "history:read"
    HISTORY_WRITE = "history:write"
    MEMBERS_ADMIN = "members:admin"
    KEYS_ADMIN = "keys:admin"
    OPS_READ = "ops:read"
    OPS_WRITE = "ops:write"
    EVENTS_WRITE = "events:write"


@dataclass(frozen=True)
class Principal:
    """A verified caller."""

    subject: str
    roles: frozenset[str]
    scopes: frozenset[str]
    token_id: str
    expires_at: datetime
    session_id: str | None = None
    profile_id: str | None = None
    max_maturity: int | None = None  # None: no ceiling
    is_kids: bool = False
    plan: str | None = None

    def require(self, *scopes: Scope) -> None:
        missing = [s.value for s in scopes if s.value not in self.scopes]
        if missing:
            raise Forbidden(f"this token lacks the scope {', '.join(missing)}")

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        profile = claims.get("profile") or {}
        return cls(
            subject=str(claims["sub"]),
            roles=frozenset(claims.get("roles", [])),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            session_id=claims.get("sid"),
            profile_id=profile.get("id"),
            max_maturity=profile.get("max_maturity"),
            is_kids=bool(profile.get("kids", False)),
            plan=claims.get("plan"),
        )


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


MAX_SESSION_ID_CHARS = 128


def parse_revocation(data: object) -> tuple[str, datetime] | None:
    """(session id, refused until) from an `auth.session.revoked` event's data, or None if
    it is not usable.

    Every follower of revocations (each platform process, the standalone edge proxy) reads
    them through this one parser. It is strict: a revocation is a record on a stream, and a
    malformed one must be skipped, not stop the follower. A naive `until` is refused here,
    because comparing it with the clock's aware time would raise on every later check."""
    if not isinstance(data, dict):
        return None
    session_id, until = data.get("session_id"), data.get("until")
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID_CHARS:
        return None
    if not isinstance(until, str) or len(until) > 64:
        return None
    try:
        when = datetime.fromisoformat(until)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return session_id, when


class TokenVerifier:
    """Verifies signature, expiry, issuer, audience and key id of access tokens."""

    def __init__(
        self,
        *,
        fetch_jwks: JwksFetcher,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway_s: int = 5,
        refetch_interval_s: float = 10.0,
        max_key_age_s: float = 300.0,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.leeway_s = leeway_s
        self.refetch_interval_s = refetch_interval_s
        self.max_key_age_s = max_key_age_s
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._revoked_sessions: dict[str, datetime] = {}

    async def _key(self, kid: str) -> Any:
        now = self.clock.monotonic()
        age = None if self._fetched_at is None else now - self._fetched_at
        # Known keys are trusted for max_key_age_s, then the set is fetched again, so a key
        # withdrawn from the JWKS (an emergency rotation) stops verifying within minutes.
        if kid in self._keys and age is not None and age < self.max_key_age_s:
            return self._keys[kid]
        # An unknown kid triggers a refetch (keys rotate), but at most once per interval,
        # failed fetches included, so a flood of forged kids cannot hammer the key source.
        if age is None or age >= self.refetch_interval_s or kid in self._keys:
            async with self._lock:
                if self._fetched_at is None or self._fetched_at <= now - min(
                    self.refetch_interval_s, self.max_key_age_s
                ):
                    self._fetched_at = now
                    try:
                        jwks = await self._fetch_jwks()
                    except PlatformError:
                        if kid in self._keys:  # key source down: keep trusting what we had
                            log.warning("JWKS refresh failed; using cached keys")
                            return self._keys[kid]
                        raise
                    self._keys = {
                        str(jwk["kid"]): OKPAlgorithm.from_jwk(json.dumps(jwk))
                        for jwk in jwks.get("keys", [])
                        if jwk.get("kid")
                    }
        if kid not in self._keys:
            raise Unauthorized("the token was signed with an unknown key")
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the access token is malformed") from None
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise Unauthorized("the access token has an unexpected header")
        key = await self._key(header["kid"])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                # Time is checked below against the injected clock, not the wall clock.
                options={
                    "require": ["exp", "iat", "sub", "aud", "iss", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise Unauthorized("the access token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the access token has an unknown issuer") from None
        except jwt.PyJWTError:
            raise Unauthorized("the access token signature is invalid") from None
        now = self.clock.now().timestamp()
        try:
            expires, issued = int(claims["exp"]), int(claims["iat"])
        except (TypeError, ValueError):
            raise Unauthorized("the access token has malformed times") from None
        if expires + self.leeway_s <= now:
            raise Unauthorized("the access token has expired")
        if issued - self.leeway_s > now:
            raise Unauthorized("the access token was issued in the future")
        principal = Principal.from_claims(claims)
        if principal.session_id and self._is_revoked(principal.session_id):
            raise Unauthorized("the session has been signed out")
        return principal

    def revoke_session(self, session_id: str, until: datetime) -> None:
        """Refuse tokens of this session until `until` (when its last token expires)."""
        self._revoked_sessions[session_id] = until
        now = self.clock.now()
        for sid, expiry in list(self._revoked_sessions.items()):
            if expiry <= now:
                del self._revoked_sessions[sid]

    def _is_revoked(self, session_id: str) -> bool:
        until = self._revoked_sessions.get(session_id)
        return until is not None and until > self.clock.now()
