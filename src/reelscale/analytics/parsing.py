"""Defensive reads of event data: the value, or `Malformed` when it is unusable.

Events come from other processes (and other versions of them), so nothing in `data` is
trusted: a missing field, a wrong type, a value out of range or absurdly long raises
`Malformed`, which the caller counts before skipping the event; it never escapes a
function. bool is refused where an int is expected, because in Python True is an int.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,47}$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

MAX_INTERVAL_MS = 600_000  # watched/rebuffer time between two heartbeats: 10 minutes at most
MAX_REQUESTS = 1_000_000_000  # per service per report
MAX_LATENCY_MS = 3_600_000.0
MAX_LIST = 1000  # title ids in one impression


class Malformed(ValueError):
    """The event's data cannot be used; the message says which field and why."""


def event_ms(time: datetime) -> int:
    """An event's time in epoch milliseconds; a time without a zone is taken as UTC."""
    if time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    return int(time.timestamp() * 1000)


def ident(data: Mapping[str, Any], key: str, fallback: str | None = None) -> str:
    """An id (a session, profile or title id: UUIDs in practice, kept general)."""
    value = data.get(key, fallback)
    if isinstance(value, str) and _ID.match(value):
        return value
    raise Malformed(f"{key} is missing or not an id")


def slug(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if isinstance(value, str) and _SLUG.match(value):
        return value
    raise Malformed(f"{key} is missing or not a short lowercase slug")


def service_name(value: object) -> str:
    if isinstance(value, str) and _SERVICE.match(value):
        return value
    raise Malformed("a service name is not a short lowercase name")


def count(data: Mapping[str, Any], key: str, *, most: int, default: int | None = None) -> int:
    """A non-negative int no larger than `most` (`default` when absent, if one is given)."""
    if key not in data and default is not None:
        return default
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise Malformed(f"{key} is not an integer from 0 to {most}")
    return value


def flag(data: Mapping[str, Any], key: str) -> bool:
    """A boolean; absent reads as False."""
    value = data.get(key, False)
    if isinstance(value, bool):
        return value
    raise Malformed(f"{key} is not a boolean")


def latency(data: Mapping[str, Any], key: str) -> float | None:
    """A latency in ms, or None (what a process reports for an interval it served nothing)."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool) and isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number) and 0 <= number <= MAX_LATENCY_MS:
            return number
    raise Malformed(f"{key} is not a latency in milliseconds")


def mapping(data: Mapping[str, Any], key: str, *, most: int) -> Mapping[str, Any]:
    value = data.get(key)
    if isinstance(value, dict) and len(value) <= most:
        return value
    raise Malformed(f"{key} is not an object of at most {most} entries")


def id_list(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if isinstance(value, list) and len(value) <= MAX_LIST:
        return [ident({"id": item}, "id") for item in value]
    raise Malformed(f"{key} is not a list of at most {MAX_LIST} ids")
