"""What the stream stores and returns: records, start positions, lag, limits.

Both backends share these types and the checks on input, so the same bad input fails the
same way whichever backend is behind the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from reelscale.core.errors import BadRequest, PayloadTooLarge
from reelscale.core.events import CloudEvent

# Kinesis caps a record at 1 MiB; NATS's default max_payload is 1 MiB including headers,
# so the event itself stays a little under that.
MAX_EVENT_BYTES = 1_000_000
MAX_PARTITION_KEY_CHARS = 256
MAX_IDEMPOTENCY_KEY_CHARS = 128
MAX_SHARDS = 1024

# Stream and group names end up in file names, NATS subjects, stream and consumer names,
# so they keep to characters every one of those accepts.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


class StartPosition(StrEnum):
    TRIM_HORIZON = "trim_horizon"  # the oldest record still kept
    LATEST = "latest"  # only records written after the reader opens
    AT_TIMESTAMP = "at_timestamp"  # the first record appended at or after a time
    AT_SEQUENCE = "at_sequence"  # the first record with a sequence number at or above one


@dataclass(frozen=True, slots=True)
class StartAt:
    """Where a group starts reading a shard it has no checkpoint for."""

    position: StartPosition
    timestamp: datetime | None = None
    sequence: int | None = None

    @classmethod
    def trim_horizon(cls) -> StartAt:
        return cls(StartPosition.TRIM_HORIZON)

    @classmethod
    def latest(cls) -> StartAt:
        return cls(StartPosition.LATEST)

    @classmethod
    def at_timestamp(cls, timestamp: datetime) -> StartAt:
        if timestamp.tzinfo is None:
            raise BadRequest("AT_TIMESTAMP needs a timezone-aware time")
        return cls(StartPosition.AT_TIMESTAMP, timestamp=timestamp)

    @classmethod
    def at_sequence(cls, sequence: int) -> StartAt:
        if sequence < 1:
            raise BadRequest("sequence numbers start at 1")
        return cls(StartPosition.AT_SEQUENCE, sequence=sequence)


TRIM_HORIZON = StartAt.trim_horizon()


class Record(NamedTuple):
    """One stored event (a NamedTuple: immutable, and cheap to build 100k times a second).

    `sequence` is unique within the stream and grows with every append: within a shard it
    is strictly increasing, so it orders the records of one partition key.
    `timestamp` is when the store appended it (UTC).
    """

    stream: str
    shard: int
    sequence: int
    partition_key: str
    timestamp: datetime
    event: CloudEvent


class PutEntry(NamedTuple):
    """One event to put, as part of a batch."""

    event: CloudEvent | Mapping[str, Any]
    partition_key: str
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ShardLag:
    """How far a consumer group is behind on one shard.

    `records` counts what was appended after the group's checkpoint; `iterator_age_s` is
    the age of the oldest of those (0 when the group is caught up), Kinesis's
    IteratorAge. A closed shard (replaced by resharding) reads 0 once it is drained.
    """

    shard: int
    records: int
    iterator_age_s: float
    checkpoint: int | None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    shards: list[int]  # the open shards, the ones new records go to
    closed_shards: list[int]  # replaced by resharding; readable until drained or expired
    max_age_s: float | None
    max_bytes: int | None


class EncodedEvent(NamedTuple):
    """An event checked and serialised once, ready for either backend to store."""

    event: CloudEvent
    payload: bytes
    partition_key: str
    idempotency_key: str | None


def check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise BadRequest(f"{kind} name must match {_NAME.pattern}, got {name!r}")
    return name


def check_retention(max_age_s: float | None, max_bytes: int | None) -> None:
    if max_age_s is not None and max_age_s <= 0:
        raise BadRequest("max_age_s must be positive")
    if max_bytes is not None and max_bytes < 1024:
        raise BadRequest("max_bytes must be at least 1024")


def check_shard_count(shards: int) -> int:
    if not 1 <= shards <= MAX_SHARDS:
        raise BadRequest(f"a stream has 1 to {MAX_SHARDS} shards, got {shards}")
    return shards


def encode_entry(entry: PutEntry, *, max_event_bytes: int = MAX_EVENT_BYTES) -> EncodedEvent:
    """Validate one entry and serialise its event; raise before anything is stored."""
    key = entry.partition_key
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_PARTITION_KEY_CHARS:
        raise BadRequest(f"partition key must be 1 to {MAX_PARTITION_KEY_CHARS} characters")
    idempotency_key = entry.idempotency_key
    if idempotency_key is not None and not (
        isinstance(idempotency_key, str)
        and 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_CHARS
        and idempotency_key.isprintable()
    ):
        raise BadRequest(
            f"idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters"
        )
    event = entry.event
    if not isinstance(event, CloudEvent):
        try:
            event = CloudEvent.model_validate(event)
        except ValidationError as exc:
            raise BadRequest(f"malformed CloudEvent: {exc.errors(include_url=False)}") from exc
    try:
        # A validated model's __dict__ is exactly its fields; orjson writes it several times
        # faster than model_dump_json, which matters at 100k events/s.
        payload = orjson.dumps(event.__dict__)
    except TypeError as exc:
        raise BadRequest(f"event data is not JSON: {exc}") from exc
    if len(payload) > max_event_bytes:
        raise PayloadTooLarge(
            f"event is {len(payload)} bytes serialised; the limit is {max_event_bytes}"
        )
    return EncodedEvent(event, payload, key, idempotency_key)


def decode_event(payload: bytes) -> CloudEvent:
    """Parse a stored event. Raises BadRequest if the bytes are not a valid envelope."""
    try:
        return CloudEvent.model_validate_json(payload)
    except ValidationError as exc:
        raise BadRequest(f"stored event is not a CloudEvent: {exc}") from exc
