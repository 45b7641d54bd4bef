"""What the runtime reports: a function's status and its dead letters.

Pydantic models, so the same shapes serve the Python API, the HTTP API (and its OpenAPI
document) and the CLI's JSON output.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reelscale.core.events import CloudEvent

FunctionState = Literal["starting", "running", "failing", "stopped"]
DeadLetterReason = Literal["retries_exhausted", "record_expired", "malformed_record"]


class FunctionStatus(BaseModel):
    """One function: where it is in its stream and what happened since the process started.

    Counters (invocations ... warm_starts) count since this runtime started; `dead_letters`
    is what the dead-letter stream holds now, whoever put it there.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    stream: str
    group: str
    state: FunctionState = Field(
        description="running; failing: its loop or a shard's keeps failing (see last_error)"
    )
    shards: int = Field(description="Shards being read now")
    lag_records: int | None = Field(
        description="Records after the group's checkpoints, all shards (None if unknown)"
    )
    iterator_age_s: float | None = Field(
        description="Age of the oldest unprocessed record, worst shard (None if unknown)"
    )
    invocations: int
    errors: int = Field(description="Invocations that raised, timed out or reported failures")
    throttles: int = Field(description="Invocations that waited for a concurrency slot")
    retries: int
    records_processed: int
    records_skipped: int = Field(description="Left out by the type filter, checkpointed")
    dead_lettered: int = Field(description="Records this runtime sent to the dead letters")
    dead_letters: int | None = Field(
        description="Letters kept in the dead-letter stream (None: no dead-letter stream)"
    )
    dead_letters_unreplayed: int | None = Field(
        description="Letters not yet replayed (after the replay position)"
    )
    cold_starts: int
    warm_starts: int
    concurrent_executions: int
    concurrency: int | None
    parallelization: int
    dead_letter_stream: str | None
    last_error: str | None
    last_error_at: datetime | None


class DeadLetter(BaseModel):
    """A record the function gave up on, as stored in its dead-letter stream."""

    model_config = ConfigDict(frozen=True)

    letter_sequence: int = Field(description="This letter's sequence in the dead-letter stream")
    function: str
    reason: DeadLetterReason
    event: CloudEvent | None = Field(
        description="The original event; None when it was malformed or too large to keep"
    )
    event_truncated: bool = Field(
        description="The original was too large to store whole beside the error: its data "
        "was left out, and it cannot be replayed from here"
    )
    stream: str
    shard: int
    sequence: int | None = Field(description="The record's sequence (None: malformed record)")
    partition_key: str | None
    record_time: datetime | None = Field(description="When the source stream appended it")
    error: str
    attempts: int = Field(description="Failed invocations that included this record")
    failed_at: datetime


class ReplayResult(BaseModel):
    function: str
    replayed: int = Field(description="Letters put back onto their source stream")
    skipped: int = Field(description="Letters passed over: no original event to put back")
