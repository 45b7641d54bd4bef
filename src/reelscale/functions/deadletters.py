"""The on-failure destination: a dead-letter stream per function, `dlq-<name>`.

Each letter is a CloudEvent of type `reelscale.function.failed` whose data holds the
original event (as JSON), why it failed, how many invocations it failed in, and where it
came from (stream, shard, sequence, partition key), so it can be put back later.

A letter must fit the store's event size limit like any event. The error text is cut to
4 KB; if the original is still too large to keep beside it, the letter keeps the original's
envelope without its data (`event_truncated`), and it is not replayable from here.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from reelscale.core.clock import Clock
from reelscale.core.errors import BadRequest, NotFound
from reelscale.core.events import CloudEvent
from reelscale.events.records import PutEntry, Record
from reelscale.events.store import EventStore
from reelscale.functions.schemas import DeadLetter, DeadLetterReason
from reelscale.functions.streams import DEAD_LETTER_MAX_AGE_S, ensure_stream

LETTER_TYPE = "reelscale.function.failed"
MAX_ERROR_CHARS = 4000
log = logging.getLogger("reelscale.functions")


@dataclass(frozen=True, slots=True)
class Failure:
    """A record the function gives up on, and why."""

    record: Record
    reason: DeadLetterReason
    error: str
    attempts: int


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    """A stored record that could not be decoded; only where it was is known."""

    stream: str
    shard: int
    after_sequence: int | None
    error: str


def letter_event(
    function: str,
    *,
    reason: DeadLetterReason,
    error: str,
    attempts: int,
    stream: str,
    shard: int,
    sequence: int | None,
    partition_key: str | None,
    record_time: datetime | None,
    original: CloudEvent | None,
    now: datetime,
    keep_data: bool = True,
) -> CloudEvent:
    original_json: dict[str, Any] | None = None
    if original is not None:
        original_json = original.model_dump(mode="json")
        if not keep_data:
            original_json["data"] = {}
    where = f"{stream}/{shard}/{sequence if sequence is not None else '?'}"
    return CloudEvent(
        id=uuid.uuid4().hex,
        source=f"reelscale/functions/{function}",
        type=LETTER_TYPE,
        time=now,
        subject=where[:256],
        data={
            "function": function,
            "reason": reason,
            "error": error[:MAX_ERROR_CHARS],
            "attempts": attempts,
            "stream": stream,
            "shard": shard,
            "sequence": sequence,
            "partition_key": partition_key,
            "record_time": record_time.isoformat() if record_time else None,
            "event": original_json,
            "event_truncated": original is not None and not keep_data,
            "failed_at": now.isoformat(),
        },
    )


def parse_letter(record: Record) -> DeadLetter | None:
    """A letter read back from the dead-letter stream, or None if it is not one."""
    data = record.event.data
    if record.event.type != LETTER_TYPE:
        return None
    try:
        return DeadLetter.model_validate({**data, "letter_sequence": record.sequence})
    except ValidationError:
        log.warning(
            "not a readable dead letter",
            extra={"stream": record.stream, "sequence": record.sequence},
        )
        return None


def _idempotency_key(*parts: object) -> str:
    """One key per failed record, so a letter rewritten after a crash is stored once."""
    text = "/".join(str(part) for part in parts)
    return "dlq:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class DeadLetterWriter:
    def __init__(self, store: EventStore, function: str, stream: str, clock: Clock) -> None:
        self.store = store
        self.function = function
        self.stream = stream
        self.clock = clock

    async def send(self, failures: list[Failure]) -> None:
        """Store one letter per failure, in order; returns once all are durable."""
        now = self.clock.now()
        entries = [self._entry(failure, now) for failure in failures]
        if entries:
            await self._put(entries)

    async def _put(self, entries: list[PutEntry]) -> None:
        try:
            await self.store.put_batch(self.stream, entries)
        except NotFound:
            # Deleted while the function ran: make it again rather than hold the shard.
            await ensure_stream(self.store, self.stream, max_age_s=DEAD_LETTER_MAX_AGE_S)
            await self.store.put_batch(self.stream, entries)

    async def send_malformed(self, bad: MalformedRecord) -> None:
        after = bad.after_sequence
        event = letter_event(
            self.function,
            reason="malformed_record",
            error=f"stored record after sequence {after} could not be decoded: {bad.error}",
            attempts=0,
            stream=bad.stream,
            shard=bad.shard,
            sequence=None,
            partition_key=None,
            record_time=None,
            original=None,
            now=self.clock.now(),
        )
        key = _idempotency_key(self.function, bad.stream, bad.shard, "after", after)
        await self.store.put_batch(self.stream, [PutEntry(event, f"{bad.stream}/{bad.shard}", key)])

    def _entry(self, failure: Failure, now: datetime) -> PutEntry:
        record = failure.record
        key = _idempotency_key(self.function, record.stream, record.shard, record.sequence)
        options: dict[str, Any] = {
            "reason": failure.reason,
            "error": failure.error,
            "attempts": failure.attempts,
            "stream": record.stream,
            "shard": record.shard,
            "sequence": record.sequence,
            "partition_key": record.partition_key,
            "record_time": record.timestamp,
            "original": record.event,
            "now": now,
        }
        event = letter_event(self.function, **options)
        if not self._fits(event):
            log.warning(
                "dead letter too large with its data; keeping the envelope only",
                extra={"function": self.function, "sequence": record.sequence},
            )
            event = letter_event(self.function, keep_data=False, **options)
        return PutEntry(event, record.partition_key, key)

    def _fits(self, event: CloudEvent) -> bool:
        try:
            size = len(orjson.dumps(event.__dict__))
        except TypeError as exc:  # the original came from the store, so it was JSON
            raise BadRequest(f"dead letter is not JSON: {exc}") from exc
        return size <= self.store.max_event_bytes
