"""FastAPI dependencies that turn a bearer token into a `Principal` and check scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelscale.core.errors import Unauthorized
from reelscale.core.identity import Principal, Scope, TokenVerifier

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
    """The verified caller, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("an access token is required")
    if len(credentials.credentials) > 4096:
        raise Unauthorized("the access token is malformed")
    principal = await _verifier(request).verify(credentials.credentials)
    request.state.principal = principal
    current_bearer.set(credentials.credentials)
    return principal


def requires(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only callers holding every one of `scopes`."""

    async def dependency(principal: Principal = Depends(authenticated)) -> Principal:
        principal.require(*scopes)
        return principal

    return dependency
