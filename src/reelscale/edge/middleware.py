"""The edge as pure ASGI middleware: classify, admit or shed, rate-limit, measure.

Install it inside the request-context middleware (so a rejection carries the request id
and is counted in the HTTP metrics) and outside the body limit (so a shed request is
refused before its body is read).

A shed request is answered at once with 503 problem+json and `Retry-After`; a throttled one
with 429. Neither reads the body nor awaits anything but the response itself, which is what
keeps a rejection far under a millisecond while the process is overloaded.

With an `authenticator` (edge/identity.py) an admitted request's token is verified before
the rate limits (which then key on the member) and before any route runs: 401 otherwise.
Admission comes first so a flood of forged tokens is shed cheaply instead of verified.

With `trusted_proxies` (edge/forwarded.py) a request from a trusted proxy is accounted to
the client its `X-Forwarded-For` names: the scope's `client` is rewritten before anything
reads it, as uvicorn's proxy-headers middleware would (which `reelscale serve` leaves off,
so the header is read once, here), so the rate limits, the logs and every route see the
real client.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelscale.core.errors import PlatformError
from reelscale.core.identity import Principal
from reelscale.core.problems import problem
from reelscale.edge.forwarded import TrustedProxies
from reelscale.edge.identity import EdgeAuthenticator, forwarded_headers
from reelscale.edge.limiter import Permit, PriorityLimiter, Rejected
from reelscale.edge.priority import Classifier
from reelscale.edge.ratelimit import RateLimiter

# Statuses that mean "the origin is overloaded": a congestion signal for the limiter, not a
# latency sample (a fast 503 would otherwise look like spare capacity).
_OVERLOAD_STATUSES = frozenset({503, 504})


def principal_subject(scope: Scope) -> str | None:
    """The member an authenticating layer verified for this request, if any."""
    state = scope.get("state")
    principal = state.get("principal") if isinstance(state, dict) else None
    return principal.subject if isinstance(principal, Principal) else None


def client_address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def resolve_client(scope: Scope, trusted: TrustedProxies) -> None:
    """Replace the scope's client by the one a trusted proxy forwarded for, if any."""
    client = scope.get("client")
    if not client:
        return
    peer = str(client[0])
    if not trusted.trusts(peer):
        return
    # Every X-Forwarded-For line, in order: one list, as RFC 9110 reads repeated fields.
    lines = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-forwarded-for"]
    if not lines:
        return
    address = trusted.client_address(peer, ",".join(lines))
    if address != peer:
        scope["client"] = (address, 0)


class EdgeMiddleware:
    """Admits each request under the priority limiter and the rate limits, or refuses it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        classifier: Classifier,
        limiter: PriorityLimiter,
        rate_limiter: RateLimiter | None = None,
        authenticator: EdgeAuthenticator | None = None,
        member_of: Callable[[Scope], str | None] = principal_subject,
        address_of: Callable[[Scope], str | None] = client_address,
        trusted_proxies: TrustedProxies | None = None,
    ) -> None:
        self.app = app
        self.classifier = classifier
        self.limiter = limiter
        self.rate_limiter = rate_limiter
        self.authenticator = authenticator
        self.member_of = member_of
        self.address_of = address_of
        self.trusted_proxies = trusted_proxies or None  # None when it trusts nobody

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.trusted_proxies is not None:
            resolve_client(scope, self.trusted_proxies)
        method: str = scope["method"]
        path: str = scope["path"]
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        priority = self.classifier.classify(method=method, path=path, headers=headers)
        if priority is None:
            if await self._authenticate(scope, receive, send, headers):
                await self.app(scope, receive, send)
            return
        if self.limiter.critical_wait_s > 0:
            outcome = await self.limiter.acquire(priority)
        else:
            outcome = self.limiter.try_acquire(priority)
        if isinstance(outcome, Rejected):
            await _refuse(scope, receive, send, 503, outcome.retry_after_s, path)
            return
        permit = outcome
        if not await self._authenticate(scope, receive, send, headers):
            permit.ignore()
            return
        if self.rate_limiter is not None:
            decision = await self.rate_limiter.check(
                method=method,
                path=path,
                member=self.member_of(scope),
                address=self.address_of(scope),
            )
            if not decision.allowed:
                permit.ignore()
                self.limiter.reject(priority, "rate_limit")
                await _refuse(scope, receive, send, 429, decision.retry_after_s, path)
                return
        await self._serve(permit, scope, receive, send)

    async def _authenticate(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> bool:
        """Verify the caller and hand the route the edge's view of the headers, or refuse."""
        if self.authenticator is None:
            return True
        try:
            identity = await self.authenticator.authenticate(
                scope["method"], scope["path"], headers
            )
        except PlatformError as exc:
            challenge = (
                {"WWW-Authenticate": 'Bearer realm="reelscale"'} if exc.status == 401 else {}
            )
            if exc.retry_after is not None:
                challenge["Retry-After"] = str(max(1, round(exc.retry_after)))
            response = problem(
                exc.status,
                title=exc.title,
                detail=exc.detail,
                instance=scope["path"],
                headers=challenge,
            )
            await response(scope, receive, send)
            return False
        # In place, not a copy: the outer request-context middleware reads the route the
        # router records on this very scope.
        scope["headers"] = forwarded_headers(
            scope["headers"], identity, headers.get("authorization")
        )
        if identity.principal is not None:
            scope.setdefault("state", {})["principal"] = identity.principal
        return True

    async def _serve(self, permit: Permit, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except TimeoutError:
            permit.drop()
            raise
        except BaseException:
            # A bug or a client gone away says nothing about load: no sample either way.
            permit.ignore()
            raise
        if status in _OVERLOAD_STATUSES:
            permit.drop()
        else:
            permit.release()


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, retry_after_s: float, path: str
) -> None:
    if status == 429:
        detail = "Too many requests; slow down and retry after the indicated time."
    else:
        detail = "The service is shedding load; retry after the indicated time."
    response = problem(
        status,
        detail=detail,
        instance=path,
        headers={"Retry-After": str(max(1, round(retry_after_s)))},
    )
    await response(scope, receive, send)
