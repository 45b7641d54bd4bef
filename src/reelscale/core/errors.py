"""The platform's error tree and its mapping to RFC 9457 problem+json.

    PlatformError                  500  something we did not foresee
    ├── BadRequest                 400  well-formed but unacceptable input
    │   ├── PayloadTooLarge        413
    │   └── Unprocessable          422  each field fine, the combination not
    ├── Unauthorized               401  no credentials, or bad or expired ones
    ├── Forbidden                  403  known caller, not allowed
    ├── NotFound                   404
    ├── Conflict                   409  duplicate or state clash
    ├── TooManyRequests            429  throttled; carries Retry-After
    └── Overloaded                 503  shed; carries Retry-After

Service code raises these and never imports the web framework; `core.problems` turns
them into responses.
"""

from __future__ import annotations

from typing import Any


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


class Unprocessable(BadRequest):
    status = 422
    title = "Unprocessable Content"


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
