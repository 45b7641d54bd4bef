"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and costs a task per request)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelscale.core.logging import bind_request_id, reset_request_id
from reelscale.core.metrics import Metrics
from reelscale.core.problems import problem
from reelscale.core.telemetry import route_family

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Metric labels must stay few: any other method is counted as OTHER.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
log = logging.getLogger("reelscale.http")


class RequestContextMiddleware:
    """Gives each request an id (kept from `X-Request-ID` when sane) and records metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        token = bind_request_id(request_id)
        status = 500
        started = time.perf_counter()
        self.metrics.http_in_flight.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        started_response = False

        async def tracking_send(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # Answer here, while the request id is still bound, so the 500 and its log line
            # carry it. Nothing is re-raised: the response is the report.
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if started_response:
                return
            await problem(500, detail="An unexpected error occurred.")(scope, receive, send_with_id)
        finally:
            self.metrics.http_in_flight.dec()
            route = getattr(scope.get("route"), "path", None) or route_family(scope["path"])
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.http_requests.labels(route, method, str(status)).inc()
            self.metrics.http_latency.labels(route, method).observe(time.perf_counter() - started)
            reset_request_id(token)


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, whether or not Content-Length is declared.

    `overrides` maps path prefixes to their own limits (upload chunks are far larger than
    any JSON body); the longest matching prefix wins."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_max = max_bytes
        self.overrides = sorted((overrides or {}).items(), key=lambda kv: -len(kv[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((m for prefix, m in self.overrides if path.startswith(prefix)), None)
        await _LimitedRequest(self.app, limit or self.default_max)(scope, receive, send)


class _LimitedRequest:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reject(scope, receive, send, 400, "Content-Length is not a number.")
                return
            if int(declared) > self.max_bytes:
                await _reject(scope, receive, send, 413, self._too_large())
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # An HTTPException, so FastAPI's body parsing passes it through untouched.
                    raise HTTPException(413, self._too_large())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:
            if started or exc.status_code != 413:
                raise
            await problem(413, detail=str(exc.detail))(scope, receive, send)

    def _too_large(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."


async def _reject(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await problem(status, detail=detail)(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
