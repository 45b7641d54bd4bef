"""The platform's error tree and its mapping to RFC 9457 problem+json.

    PlatformError                  500  something we did not foresee
    ├── BadRequest                 400  well-formed but unacceptable input
    │   └── PayloadTooLarge        413
    ├── Unauthorized               401  no credentials, or bad or expired ones
    ├── Forbidden                  403  known caller, not allowed
    ├── NotFound                   404
    ├── Conflict                   409  duplicate or state clash
    ├── TooManyRequests            429  throttled; carries Retry-After
    └── Overloaded                 503  shed; carries Retry-After

Service code raises these and never imports the web framework; one set of handlers,
installed by the app factory, turns them into responses.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from reelscale.core.logging import current_request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("reelscale.errors")


class PlatformError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.retry_after = retry_after
        self.extra = extra

    @property
    def type_slug(self) -> str:
        return self.title.lower().replace(" ", "-")


class BadRequest(PlatformError):
    status = 400
    title = "Bad Request"


class PayloadTooLarge(BadRequest):
    status = 413
    title = "Payload Too Large"


class Unauthorized(PlatformError):
    status = 401
    title = "Unauthorized"


class Forbidden(PlatformError):
    status = 403
    title = "Forbidden"


class NotFound(PlatformError):
    status = 404
    title = "Not Found"


class Conflict(PlatformError):
    status = 409
    title = "Conflict"


class TooManyRequests(PlatformError):
    status = 429
    title = "Too Many Requests"


class Overloaded(PlatformError):
    status = 503
    title = "Service Unavailable"


def problem(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build one problem+json response."""
    title = title or HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"https://reelscale.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail or title,
    }
    if instance:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _platform_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PlatformError)
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="reelscale"'
    if exc.status >= 500:
        log.error("platform error", exc_info=exc)
    return problem(
        exc.status,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=headers,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"]) if first["loc"] else "request"
    return problem(
        422,
        title="Unprocessable Content",
        detail=f"{where}: {first['msg']}",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(
        exc.status_code,
        detail=str(exc.detail),
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, detail="An unexpected error occurred.", instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PlatformError, _platform_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
