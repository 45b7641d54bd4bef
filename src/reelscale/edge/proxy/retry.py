"""When a failed request may be sent again: the method rule and the retry budget.

Retrying is only safe when the request cannot have had an effect twice: an idempotent
method (GET, HEAD, OPTIONS, PUT, DELETE, TRACE), or a POST or PATCH carrying an
`Idempotency-Key` header (the client promises the service deduplicates it), and only when
the instance sent no response byte (a connect failure, or a reset before any reply). The
exchange checks the second half; this module holds the first, and the budget.

The budget keeps retries from multiplying load on a pool that is already failing: each
request earns `ratio` of a retry and a retry spends a whole one, so over any stretch of
time retries are at most `ratio` of requests. Savings stop at `burst`, so a quiet hour does
not bank a retry storm. Credit is counted in thousandths, in integers, so ten requests at
0.1 earn exactly one retry.
"""

from __future__ import annotations

_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
_WITH_KEY = frozenset({b"POST", b"PATCH"})
_UNIT = 1000


def idempotent(method: bytes, *, idempotency_key: bool) -> bool:
    """Whether repeating the request is harmless by its method (and key, for POST/PATCH)."""
    return method in _IDEMPOTENT or (idempotency_key and method in _WITH_KEY)


class RetryBudget:
    """Retries as a fraction of requests, for one pool."""

    __slots__ = ("_burst", "_credit", "_earn", "exhausted", "requests", "retries")

    def __init__(self, *, ratio: float, burst: int) -> None:
        if not 0 <= ratio <= 1 or burst < 1:
            raise ValueError("a retry budget needs 0 <= ratio <= 1 and burst >= 1")
        self._earn = round(ratio * _UNIT)
        self._burst = burst * _UNIT
        self._credit = 0
        self.requests = 0
        self.retries = 0
        self.exhausted = 0

    def record_request(self) -> None:
        """One original request (never a retry) earns its share."""
        self.requests += 1
        credit = self._credit + self._earn
        self._credit = credit if credit < self._burst else self._burst

    def try_spend(self) -> bool:
        """Take one retry if the budget has it; count a refusal otherwise."""
        if self._credit >= _UNIT:
            self._credit -= _UNIT
            self.retries += 1
            return True
        self.exhausted += 1
        return False

    @property
    def available(self) -> float:
        return self._credit / _UNIT
