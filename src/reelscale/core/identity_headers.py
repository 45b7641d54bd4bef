"""Signed identity headers: how the edge tells a service who is calling.

The edge verifies the caller's access token (signature, expiry, audience) once, then passes
the verified identity to the service in one header:

    X-Reelscale-Identity: v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>

The claims are the principal's (member, roles, scopes, token id and expiry, session,
profile) plus the request it was issued for (method and path) and a short expiry of its own.
The MAC key is derived from the platform secret with HKDF and a purpose label, so it is
useless for anything else (media URLs have their own key). A service checks the MAC in
constant time, the expiry against its clock, and that the method and path are its own, so
a header captured on one request cannot be replayed on another route, and a forged or
tampered one is refused. Within its few seconds of life it could be replayed on the same
route by whoever can read the traffic between edge and service; that link is internal.

The edge lives in `reelscale.edge` and signs; services verify here, in core, which imports
no service and not the edge.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from reelscale.core.clock import Clock
from reelscale.core.errors import Unauthorized
from reelscale.core.identity import Principal

IDENTITY_HEADER = "x-reelscale-identity"
IDENTITY_HEADER_BYTES = IDENTITY_HEADER.encode()
VERSION = "v1"
PURPOSE = b"reelscale identity header v1"
DEFAULT_TTL_S = 30.0  # edge to service is one hop: seconds, not minutes
MAX_HEADER_CHARS = 8192
MAX_CLOCK_SKEW_S = 5.0  # a header may not claim to live longer than ttl plus this


def identity_key(secret: bytes) -> bytes:
    """The MAC key for identity headers, derived from the platform secret for this purpose."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE)
    return hkdf.derive(secret)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed_part: str) -> bytes:
    return hmac.new(key, signed_part.encode("ascii"), hashlib.sha256).digest()


def sign_identity(
    principal: Principal,
    *,
    key: bytes,
    method: str,
    path: str,
    now: float,
    ttl_s: float = DEFAULT_TTL_S,
) -> str:
    """The header value vouching for `principal` on this one request, for `ttl_s` seconds.

    It never outlives the access token it was derived from."""
    expires = min(now + ttl_s, principal.expires_at.timestamp())
    claims: dict[str, Any] = {
        "sub": principal.subject,
        "roles": sorted(principal.roles),
        "scope": " ".join(sorted(principal.scopes)),
        "jti": principal.token_id,
        "texp": int(principal.expires_at.timestamp()),
        "sid": principal.session_id,
        "pid": principal.profile_id,
        "mm": principal.max_maturity,
        "kids": principal.is_kids,
        "plan": principal.plan,
        "m": method.upper(),
        "p": path,
        "exp": math.floor(expires * 1000) / 1000,
    }
    signed_part = f"{VERSION}.{_b64(orjson.dumps(claims))}"
    return f"{signed_part}.{_b64(_mac(key, signed_part))}"


def verify_identity(
    value: str,
    *,
    key: bytes,
    method: str,
    path: str,
    now: float,
    max_ttl_s: float = DEFAULT_TTL_S,
) -> Principal:
    """The principal a valid header vouches for; `Unauthorized` for anything else.

    Refused: malformed, another version, a bad MAC (forged or tampered), expired (the
    header or the token inside it), or issued for another method or path."""
    if len(value) > MAX_HEADER_CHARS:
        raise Unauthorized("the identity header is malformed")
    version, _, rest = value.partition(".")
    payload, _, mac = rest.partition(".")
    if version != VERSION or not payload or not mac:
        raise Unauthorized("the identity header is malformed")
    try:
        given = _unb64(mac)
        raw = _unb64(payload)
    except (binascii.Error, ValueError):
        raise Unauthorized("the identity header is malformed") from None
    if not hmac.compare_digest(given, _mac(key, f"{version}.{payload}")):
        raise Unauthorized("the identity header signature is invalid")
    # Past the MAC the claims were written by an edge holding the key: parse them strictly
    # all the same, so a bug there becomes a 401 and never a 500.
    try:
        claims = orjson.loads(raw)
        expires = float(claims["exp"])
        token_expires = int(claims["texp"])
        bound_method, bound_path = str(claims["m"]), str(claims["p"])
        max_maturity = claims["mm"]
        principal = Principal(
            subject=str(claims["sub"]),
            roles=frozenset(str(r) for r in claims["roles"]),
            scopes=frozenset(str(claims["scope"]).split()),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(token_expires, UTC),
            session_id=_optional_str(claims["sid"]),
            profile_id=_optional_str(claims["pid"]),
            max_maturity=None if max_maturity is None else int(max_maturity),
            is_kids=bool(claims["kids"]),
            plan=_optional_str(claims["plan"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError):
        raise Unauthorized("the identity header is malformed") from None
    if expires <= now or token_expires <= now:
        raise Unauthorized("the identity header has expired")
    if expires > now + max_ttl_s + MAX_CLOCK_SKEW_S:
        # Longer than any edge signs for (or the edge's clock is far ahead): refuse.
        raise Unauthorized("the identity header lives too long")
    if bound_method != method.upper() or bound_path != path:
        raise Unauthorized("the identity header was issued for another request")
    return principal


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


class IdentityHeaders:
    """Signs and verifies identity headers with the platform's key and clock.

    `required` is for services that run behind a standalone edge: a request without a valid
    identity header is refused even if it carries a valid bearer token, because the edge is
    the one place tokens are verified and a request that skipped it is suspect.

    The key is derived on first use, so building an app reads no secret."""

    def __init__(
        self,
        *,
        secret: Callable[[], bytes],
        clock: Clock,
        ttl_s: float = DEFAULT_TTL_S,
        required: bool = False,
    ) -> None:
        self._secret = secret
        self.clock = clock
        self.ttl_s = ttl_s
        self.required = required

    @functools.cached_property
    def key(self) -> bytes:
        return identity_key(self._secret())

    def sign(self, principal: Principal, *, method: str, path: str) -> str:
        now = self.clock.now().timestamp()
        return sign_identity(
            principal, key=self.key, method=method, path=path, now=now, ttl_s=self.ttl_s
        )

    def verify(self, value: str, *, method: str, path: str) -> Principal:
        now = self.clock.now().timestamp()
        return verify_identity(
            value, key=self.key, method=method, path=path, now=now, max_ttl_s=self.ttl_s
        )
