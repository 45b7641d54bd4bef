"""RFC 9457 problem+json responses, and the handlers that map every error to one."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from reelscale.core.errors import PlatformError
from reelscale.core.logging import current_request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("reelscale.errors")

# The error responses routes declare in OpenAPI.
STANDARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request"},
    401: {"description": "Missing, invalid or expired credentials"},
    403: {"description": "Not allowed"},
    404: {"description": "Not found (or not for this profile)"},
    409: {"description": "Conflict"},
    422: {"description": "Invalid body or parameters"},
    429: {"description": "Throttled; see Retry-After"},
}


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


async def _pool_exhausted(request: Request, _exc: Exception) -> JSONResponse:
    # Every database connection stayed busy past the pool timeout: shed, do not crash.
    log.warning("database pool exhausted", extra={"path": request.url.path})
    return problem(
        503,
        detail="The service is busy; retry shortly.",
        headers={"Retry-After": "2"},
        instance=request.url.path,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, detail="An unexpected error occurred.", instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PlatformError, _platform_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoolTimeout, _pool_exhausted)
    app.add_exception_handler(Exception, _unexpected_error)
