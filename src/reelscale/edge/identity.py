"""Zero trust at the edge: every request's access token is verified before any route runs.

`EdgeAuthenticator` verifies the bearer token (signature, algorithm, issuer, audience,
expiry, key id, revoked session: `core.identity.TokenVerifier`) and returns the principal
plus a signed identity header vouching for it on this one request
(`core.identity_headers`). Scopes stay checked per route by `core.auth.requires`, which
knows what each route needs.

Unauthenticated routes are an explicit allow-list, `OPEN_ROUTES`: each entry says why it is
open. Anything else needs a valid token, including paths no route serves, so probing for
routes without a token learns nothing. `tests/edge/test_identity_routes.py` walks every
route of a full app and fails if one is neither authenticated nor on this list.

The API is plain (method, path, headers) so the standalone proxy can call it as well as the
in-process middleware:

    identity = await authenticator.authenticate(method, path, headers)  # or Unauthorized
    principal, header = identity  # both None for an open route
    # forward `header` as X-Reelscale-Identity, after dropping any the client sent
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from reelscale.core.errors import Unauthorized
from reelscale.core.identity import Principal, TokenVerifier
from reelscale.core.identity_headers import IDENTITY_HEADER, IdentityHeaders
from reelscale.edge.priority import compile_glob

MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True)
class OpenRoute:
    """Requests with one of `methods` on a path matching `path` (a glob) need no token."""

    methods: frozenset[str]
    path: str
    why: str
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", compile_glob(self.path))

    @classmethod
    def of(cls, methods: str, path: str, why: str) -> OpenRoute:
        return cls(frozenset(m.strip().upper() for m in methods.split(",")), path, why)

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self._pattern.match(path) is not None


_PAGE = "GET,HEAD"
_UI_SHELL = "the browser UI's page shell; the page calls the API with a token"

OPEN_ROUTES: tuple[OpenRoute, ...] = (
    OpenRoute.of("POST", "/v1/auth/signup", "creates the account a token will belong to"),
    OpenRoute.of("POST", "/v1/auth/login", "the password is the credential"),
    OpenRoute.of("POST", "/v1/auth/refresh", "the refresh token is the credential"),
    OpenRoute.of("GET", "/.well-known/jwks.json", "public keys every verifier fetches"),
    OpenRoute.of("GET", "/healthz", "liveness probes carry no token"),
    OpenRoute.of("GET", "/readyz", "readiness probes carry no token"),
    OpenRoute.of("GET", "/metrics", "Prometheus scrapes; keep the port internal"),
    OpenRoute.of(_PAGE, "/media/s/**", "signed media paths carry their own HMAC and expiry"),
    OpenRoute.of("GET", "/v1/catalog/artwork/*/*", "generated poster art, public like a CDN"),
    OpenRoute.of("GET", "/openapi.json", "the API description"),
    OpenRoute.of("GET", "/docs", "the API explorer page"),
    OpenRoute.of("GET", "/docs/oauth2-redirect", "the API explorer page"),
    OpenRoute.of("GET", "/redoc", "the API reference page"),
    OpenRoute.of(_PAGE, "/static/**", "the browser UI's scripts, styles and images"),
    OpenRoute.of(_PAGE, "/", _UI_SHELL),
    OpenRoute.of(_PAGE, "/browse", _UI_SHELL),
    OpenRoute.of(_PAGE, "/title/*", _UI_SHELL),
    OpenRoute.of(_PAGE, "/watch/*", _UI_SHELL),
    OpenRoute.of(_PAGE, "/search", _UI_SHELL),
    OpenRoute.of(_PAGE, "/profiles", _UI_SHELL),
    OpenRoute.of(_PAGE, "/login", _UI_SHELL),
    OpenRoute.of(_PAGE, "/editor", _UI_SHELL),
    OpenRoute.of(_PAGE, "/ops", _UI_SHELL),
    OpenRoute.of(_PAGE, "/api", "redirects to the API explorer"),
)


class EdgeIdentity(NamedTuple):
    """Who the edge verified (None on an open route) and the header vouching for it."""

    principal: Principal | None
    header: str | None


ANONYMOUS = EdgeIdentity(None, None)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header, or `Unauthorized`."""
    if authorization is None:
        raise Unauthorized("an access token is required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("an access token is required")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("the access token is malformed")
    return token


class EdgeAuthenticator:
    """Verifies the caller of every request not on the open-route allow-list."""

    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        identity_headers: IdentityHeaders,
        open_routes: Sequence[OpenRoute] = OPEN_ROUTES,
    ) -> None:
        self.verifier = verifier
        self.identity_headers = identity_headers
        self.open_routes = tuple(open_routes)
        # Most open requests are exact paths (probes, pages): one set lookup before globs.
        self._exact = {
            (method, route.path)
            for route in self.open_routes
            if "*" not in route.path
            for method in route.methods
        }
        self._globs = tuple(route for route in self.open_routes if "*" in route.path)
        # The globs, one alternation per method: a single regex match per request (the
        # standalone proxy asks this of every request).
        self._glob_by_method = {
            method: re.compile(
                "|".join(f"(?:{r._pattern.pattern})" for r in self._globs if method in r.methods)
            )
            for method in {m for route in self._globs for m in route.methods}
        }

    def is_open(self, method: str, path: str) -> bool:
        """Whether the allow-list lets this request through without a token (the method in
        any case: the proxy asks with the method as sent, nearly always upper-case)."""
        if (method, path) in self._exact:
            return True
        pattern = self._glob_by_method.get(method)
        if pattern is None:
            upper = method.upper()
            # Only an unknown or lower-case method gets here: upper-case it once and retry.
            return upper != method and self.is_open(upper, path)
        return pattern.match(path) is not None

    async def authenticate(
        self, method: str, path: str, headers: Mapping[str, str]
    ) -> EdgeIdentity:
        """The verified caller and its signed header, `ANONYMOUS` on an open route.

        `headers` are keyed by lower-case name. Raises `Unauthorized` (401) for a missing,
        malformed, forged, expired, revoked or foreign-audience token, and whatever
        `PlatformError` the key source raises when it cannot be reached (503)."""
        if self.is_open(method, path):
            return ANONYMOUS
        principal = await self.verifier.verify(bearer_token(headers.get("authorization")))
        return EdgeIdentity(
            principal, self.identity_headers.sign(principal, method=method, path=path)
        )


def forwarded_headers(
    raw: Iterable[tuple[bytes, bytes]], identity: EdgeIdentity, authorization: str | None
) -> list[tuple[bytes, bytes]]:
    """Request headers as a service should see them after the edge.

    Any identity header the client sent is dropped (only the edge speaks it), and so is
    every Authorization header but the one the edge verified, so the service and the edge
    can never disagree about which token a request carried."""
    name = IDENTITY_HEADER.encode()
    kept = [(k, v) for k, v in raw if k.lower() != name and k.lower() != b"authorization"]
    if authorization is not None:
        kept.append((b"authorization", authorization.encode("latin-1")))
    if identity.header is not None:
        kept.append((name, identity.header.encode("ascii")))
    return kept
