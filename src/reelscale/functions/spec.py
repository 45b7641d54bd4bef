"""What a function is: its handler, the stream it reads and how failures are treated.

A `FunctionSpec` is checked when it is built, so a bad setting fails at registration with
a message that names it, long before any record is read.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from reelscale.core.errors import BadRequest
from reelscale.events.records import TRIM_HORIZON, Record, StartAt, check_name

MAX_NAME_CHARS = 48  # the stream and group name limit (events.records)
MAX_BATCH_SIZE = 10_000  # Kinesis's ceiling for an event source mapping
MAX_BATCH_WINDOW_S = 300.0
MAX_RETRIES = 10_000  # retries are always bounded: a poison record must end somewhere
MAX_BACKOFF_S = 3600.0
MAX_PARALLELIZATION = 10  # Lambda's ParallelizationFactor range is 1 to 10
MAX_TIMEOUT_S = 900.0  # Lambda's 15 minutes
MAX_TYPE_PREFIX_CHARS = 128
DEAD_LETTER_PREFIX = "dlq-"
REPLAY_GROUP_PREFIX = "replay-"
_TYPE_PREFIX = re.compile(r"^[a-z0-9_.-]{1,128}$")  # what a CloudEvent type may hold


@dataclass(frozen=True, slots=True)
class BatchFailure:
    """Returned by a handler that processed part of a batch (Lambda's batch item failures).

    `failed` lists the sequence numbers that failed. Everything before the lowest of them
    counts as done; that record and every later one are retried, in order.
    """

    failed: list[int] = field(default_factory=list)


Handler = Callable[[list[Record]], Awaitable[BatchFailure | None]]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    stream: str
    handler: Handler
    batch_size: int = 100
    batch_window_s: float = 0.0
    types: tuple[str, ...] = ()
    max_retries: int = 3
    retry_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    bisect_on_error: bool = True
    max_record_age_s: float | None = None
    concurrency: int | None = None
    parallelization: int = 1
    start: StartAt = TRIM_HORIZON
    group: str | None = None
    dead_letter: bool = True
    timeout_s: float = 60.0  # an invocation running longer is cancelled and counts as failed
    create_stream: bool = True  # create a missing source stream (with `shards` shards)
    shards: int = 1

    def __post_init__(self) -> None:
        _check_function_name(self.name)
        check_name("stream", self.stream)
        if self.group is not None:
            check_name("group", self.group)
        if self.stream == self.dead_letter_stream:
            raise BadRequest(f"function {self.name!r} cannot read its own dead-letter stream")
        if not _is_async_callable(self.handler):
            raise BadRequest(f"function {self.name!r}: the handler must be an async function")
        _check_int(self.name, "batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        _check_float(self.name, "batch_window_s", self.batch_window_s, 0.0, MAX_BATCH_WINDOW_S)
        _check_int(self.name, "max_retries", self.max_retries, 0, MAX_RETRIES)
        _check_float(self.name, "retry_backoff_s", self.retry_backoff_s, 0.0, MAX_BACKOFF_S)
        _check_float(
            self.name, "max_backoff_s", self.max_backoff_s, self.retry_backoff_s, MAX_BACKOFF_S
        )
        if self.max_record_age_s is not None:
            _check_float(self.name, "max_record_age_s", self.max_record_age_s, 0.001, 7 * 86400.0)
        if self.concurrency is not None:
            _check_int(self.name, "concurrency", self.concurrency, 1, 10_000)
        _check_int(self.name, "parallelization", self.parallelization, 1, MAX_PARALLELIZATION)
        _check_float(self.name, "timeout_s", self.timeout_s, 0.001, MAX_TIMEOUT_S)
        _check_int(self.name, "shards", self.shards, 1, 1024)
        if not isinstance(self.start, StartAt):
            raise BadRequest(f"function {self.name!r}: start must be a StartAt")
        types: object = self.types  # callers may pass anything, a bare string included
        if not isinstance(types, tuple):
            raise BadRequest(
                f"function {self.name!r}: types must be a tuple of type prefixes, "
                f"e.g. ('playback.',), got {self.types!r}"
            )
        for prefix in self.types:
            if not isinstance(prefix, str) or not _TYPE_PREFIX.match(prefix):
                raise BadRequest(
                    f"function {self.name!r}: type prefix {prefix!r} must match "
                    f"{_TYPE_PREFIX.pattern}"
                )

    @property
    def consumer_group(self) -> str:
        return self.group or self.name

    @property
    def dead_letter_stream(self) -> str:
        return derived_name(DEAD_LETTER_PREFIX, self.name)

    @property
    def replay_group(self) -> str:
        return derived_name(REPLAY_GROUP_PREFIX, self.name)

    def wants(self, record: Record) -> bool:
        """Whether the type filter lets this record through to the handler."""
        return not self.types or record.event.type.startswith(self.types)


def derived_name(prefix: str, name: str) -> str:
    """`prefix + name`, kept within the 48-character name limit.

    A name that does not fit is cut and given a hash of the whole name, so two long names
    that share their first characters still get different streams and groups.
    """
    whole = prefix + name
    if len(whole) <= MAX_NAME_CHARS:
        return whole
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    keep = MAX_NAME_CHARS - len(prefix) - len(digest) - 1
    return f"{prefix}{name[:keep].rstrip('-')}-{digest}"


def _check_function_name(name: object) -> None:
    if not isinstance(name, str):
        raise BadRequest(f"a function name must be a string, got {name!r}")
    try:
        check_name("function", name)
    except BadRequest as exc:
        raise BadRequest(f"function name {name!r} must be 1 to 48 of [a-z0-9-]") from exc


def _is_async_callable(handler: object) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _check_int(function: str, what: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"function {function!r}: {what} must be an integer {low} to {high}")


def _check_float(function: str, what: str, value: object, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value  # NaN
        or not low <= value <= high
    ):
        raise BadRequest(f"function {function!r}: {what} must be a number {low} to {high}")
