"""FastAPI dependencies that turn a bearer token into a `Principal` and check scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelscale.core.errors import Unauthorized
from reelscale.core.identity import Principal, Scope, TokenVerifier
from reelscale.core.identity_headers import IDENTITY_HEADER, IdentityHeaders

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/login")

# The caller's verified token, so a service calling another on the caller's behalf (playback
# asking the catalog about a title) presents the caller's own identity and limits.
current_bearer: ContextVar[str | None] = ContextVar("reelscale_current_bearer", default=None)


async def forward_bearer() -> str:
    """A token source for HTTP clients: the verified token of the request being served."""
    token = current_bearer.get()
    if token is None:
        raise Unauthorized("no caller token to act on behalf of")
    return token


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


async def authenticated(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    """The verified caller, or 401.

    In order: the principal the in-process edge already verified (request state, which no
    client can write); else a signed identity header from an edge in front, which must be
    valid (a bad one is refused, never skipped); else, unless this service only accepts
    requests through the edge (`REELSCALE_REQUIRE_EDGE_IDENTITY`), the bearer token, verified
    here."""
    bearer = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        if len(credentials.credentials) > 4096:
            raise Unauthorized("the access token is malformed")
        bearer = credentials.credentials
    headers: IdentityHeaders | None = getattr(request.app.state, "identity_headers", None)
    verified = getattr(request.state, "principal", None)
    signed = request.headers.get(IDENTITY_HEADER)
    if isinstance(verified, Principal):
        principal = verified
    elif signed is not None and headers is not None:
        principal = headers.verify(signed, method=request.method, path=request.scope["path"])
    elif headers is not None and headers.required:
        raise Unauthorized("this service accepts requests only through the edge")
    elif bearer is None:
        raise Unauthorized("an access token is required")
    else:
        principal = await _verifier(request).verify(bearer)
    request.state.principal = principal
    if bearer is not None:
        current_bearer.set(bearer)
    return principal


def requires(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only callers holding every one of `scopes`."""

    async def dependency(principal: Principal = Depends(authenticated)) -> Principal:
        principal.require(*scopes)
        return principal

    return dependency
