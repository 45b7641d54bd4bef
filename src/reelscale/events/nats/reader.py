"""Reading one shard of a JetStream-backed stream for a consumer group.

An open shard is read through the group's durable pull consumer with explicit acks:
JetStream redelivers what is not acked within ack_wait. Opening (or rewinding) a reader
recreates that consumer at the group's checkpoint + 1, so a restarted reader resumes in
order at once instead of waiting for the old session's messages to time out.

A closed shard (see `store`) cannot have a consumer, so it is read with direct gets, and
ack_wait is kept on the client.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RawStreamMsg
from nats.js.errors import BadRequestError
from nats.js.errors import NotFoundError as JsNotFound

from reelscale.core.errors import BadRequest, NotFound, PlatformError
from reelscale.events.records import Record, StartAt, StartPosition, decode_event
from reelscale.events.store import ShardReader

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

    from reelscale.events.nats.store import NatsEventStore

log = logging.getLogger("reelscale.events.nats")

KEY_HEADER = "Reelscale-Key"
MAX_ACK_PENDING = 20_000  # JetStream stops delivering to a consumer past this many unacked
_MIN_FETCH_WAIT_S = 0.005  # a poll: nats-py needs a positive timeout, and waits it out
_START_TIME_SLACK = timedelta(milliseconds=1)


def consumer_name(group: str, shard: int) -> str:
    return f"{group}_{shard}"


def _make_record(
    stream: str, subject: str, sequence: int, when: datetime | None, headers: Any, data: Any
) -> Record | None:
    """A record from a stored message, or None if the message is not one of ours."""
    key = (headers or {}).get(KEY_HEADER)
    shard = subject.rsplit(".", 1)[-1]
    if not key or not shard.isdigit() or when is None or not data:
        return None
    try:
        event = decode_event(bytes(data))
    except BadRequest:
        return None
    return Record(stream, int(shard), sequence, key, when, event)


def record_from_raw(stream: str, raw: RawStreamMsg) -> Record | None:
    return _make_record(stream, raw.subject or "", raw.seq or 0, raw.time, raw.headers, raw.data)


def record_from_msg(stream: str, msg: Msg) -> Record | None:
    meta = msg.metadata
    return _make_record(
        stream, msg.subject, meta.sequence.stream, meta.timestamp, msg.headers, msg.data
    )


class NatsShardReader(ShardReader):
    store: NatsEventStore

    def __init__(
        self,
        store: NatsEventStore,
        stream: str,
        *,
        group: str,
        shard: int,
        start: StartAt,
        ack_wait_s: float,
        parents: tuple[int, ...],
    ) -> None:
        super().__init__(
            store,
            stream,
            group=group,
            shard=shard,
            start=start,
            ack_wait_s=ack_wait_s,
            parents=parents,
        )
        self.store = store
        self._origin = start
        self._sub: JetStreamContext.PullSubscription | None = None
        self._in_flight: dict[int, Msg] = {}
        self._cursor: int | None = None  # next sequence, when reading a closed shard
        self._unacked_since: float | None = None
        self._not_before: datetime | None = None  # AT_TIMESTAMP: skip records before this
        self._waiting = 1 << 30  # messages the server holds for us; unknown until a fetch
        self._closed = False

    @property
    def subject(self) -> str:
        return f"{self.stream}.{self.shard}"

    async def open(self) -> None:
        self.checkpointed = await self.store.load_checkpoint(
            self.stream, group=self.group, shard=self.shard
        )
        if self.start.position is StartPosition.LATEST:
            # Pinned to a sequence once, so a rewind before any checkpoint comes back here.
            info = await self.store.js.stream_info(self.stream)
            self._origin = StartAt.at_sequence(info.state.last_seq + 1)
        await self._position()

    async def _position(self) -> None:
        await self._drop_subscription()
        self._in_flight.clear()
        self._unacked_since = None
        self._cursor = None
        self._not_before = None
        self._waiting = 1 << 30
        resume = (
            StartAt.at_sequence(self.checkpointed + 1)
            if self.checkpointed is not None
            else self._origin
        )
        shard_map = await self.store.shard_map(self.stream, fresh=True)
        if shard_map.is_open(self.shard):
            try:
                await self._subscribe(resume)
                return
            except BadRequestError:
                pass  # closed between the map read and now: read it as a closed shard
        self._cursor = await self._cursor_for(resume)

    async def _subscribe(self, resume: StartAt) -> None:
        js = self.store.js
        durable = consumer_name(self.group, self.shard)
        with contextlib.suppress(JsNotFound):
            await js.delete_consumer(self.stream, durable)
        config = ConsumerConfig(
            durable_name=durable,
            filter_subject=self.subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=-1,
            max_ack_pending=MAX_ACK_PENDING,
        )
        if resume.position is StartPosition.AT_SEQUENCE:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = resume.sequence
        elif resume.position is StartPosition.AT_TIMESTAMP and resume.timestamp is not None:
            # The server keeps nanoseconds and records carry microseconds (rounded), so
            # start a little early and let `_keep` drop what is before the time.
            config.deliver_policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = resume.timestamp - _START_TIME_SLACK
            self._not_before = resume.timestamp
        else:
            config.deliver_policy = DeliverPolicy.ALL
        await js.add_consumer(self.stream, config)
        self._sub = await js.pull_subscribe_bind(durable, self.stream)

    async def _cursor_for(self, resume: StartAt) -> int:
        if resume.position is StartPosition.AT_SEQUENCE:
            return resume.sequence or 1
        if resume.position is StartPosition.AT_TIMESTAMP and resume.timestamp is not None:
            record = await self.store.next_record(self.stream, self.shard, 1)
            while record is not None and record.timestamp < resume.timestamp:
                record = await self.store.next_record(self.stream, self.shard, record.sequence + 1)
            return record.sequence if record is not None else (1 << 62)
        return 1

    async def _read(self, max_records: int, wait_s: float) -> list[Record]:
        if self._closed:
            raise NotFound("reader is closed")
        if self._sub is not None:
            return await self._fetch(max_records, wait_s)
        return await self._read_closed(max_records)

    async def _fetch(self, max_records: int, wait_s: float) -> list[Record]:
        # nats-py's batch fetch, once it has a message, waits for the whole batch or the
        # deadline. So: ask for what the server last said was waiting (each message
        # carries that count), which returns at once; else gather for a moment, so a
        # trickle still comes in batches; else ask for one message, which returns the
        # moment one arrives.
        batch = min(max_records, self._waiting) if self._waiting else max_records
        messages = await self._pull(batch, _MIN_FETCH_WAIT_S)
        if not messages and wait_s > _MIN_FETCH_WAIT_S:
            messages = await self._pull(1, wait_s - _MIN_FETCH_WAIT_S)
        self._waiting = messages[-1].metadata.num_pending if messages else 0
        records = []
        for msg in messages:
            record = record_from_msg(self.stream, msg)
            if record is None:
                # Published around the store (no key header, not a CloudEvent). Dropped
                # with a log line rather than blocking the shard forever.
                log.error(
                    "skipping a message that is not a reelscale record",
                    extra={"subject": msg.subject, "sequence": msg.metadata.sequence.stream},
                )
                await msg.term()
                continue
            self._in_flight[record.sequence] = msg  # acked by the next checkpoint past it
            if self._keep(record):
                records.append(record)
        return records

    async def _pull(self, batch: int, timeout_s: float) -> list[Msg]:
        assert self._sub is not None
        try:
            return await self._sub.fetch(batch, timeout=timeout_s)
        except (NatsTimeout, TimeoutError):
            return []
        except JsNotFound as exc:
            raise NotFound(f"no stream {self.stream!r}") from exc

    def _keep(self, record: Record) -> bool:
        if self._not_before is None:
            return True
        if record.timestamp < self._not_before:
            return False
        self._not_before = None  # timestamps only grow along a shard
        return True

    async def _read_closed(self, max_records: int) -> list[Record]:
        assert self._cursor is not None
        clock = self.store.clock
        if self.overdue(self._unacked_since, clock.monotonic()):
            await self.rewind()
            return await self._read(max_records, 0.0)
        records: list[Record] = []
        while len(records) < max_records:
            record = await self.store.next_record(self.stream, self.shard, self._cursor)
            if record is None:
                break  # a closed shard takes no more records: nothing to wait for
            records.append(record)
            self._cursor = record.sequence + 1
        if records and self._unacked_since is None:
            self._unacked_since = clock.monotonic()
        return records

    async def _checkpoint(self, sequence: int) -> None:
        await self.store.save_checkpoint(
            self.stream, group=self.group, shard=self.shard, sequence=sequence
        )
        done = [seq for seq in self._in_flight if seq <= sequence]
        for seq in sorted(done):
            with contextlib.suppress(PlatformError, Exception):
                await self._in_flight.pop(seq).ack()
        if self._sub is None:
            if self.last_read is not None and sequence >= self.last_read:
                self._unacked_since = None
            else:
                self._unacked_since = self.store.clock.monotonic()

    async def rewind(self) -> None:
        await self._position()

    async def _drop_subscription(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._drop_subscription()
            self.store.forget_reader(self)
