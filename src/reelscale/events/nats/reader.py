"""Reading one shard of a JetStream-backed stream for a consumer group.

An open shard is read through the group's durable pull consumer, with pull requests kept
outstanding all the time (see `pull`): records reach a local buffer as they are stored,
and a read takes what has come, waiting only when nothing has. Acks are explicit: a
checkpoint acks every message it covers. Opening (or rewinding) a reader recreates
that consumer at the group's checkpoint + 1, so a restarted reader resumes in order at
once instead of waiting for the old session's messages to time out. ack_wait is kept on
the client, as for the embedded store: records read and not checkpointed within it make
the next read rewind to the checkpoint.

A closed shard (see `store`) cannot have a consumer, so it is read with direct gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RawStreamMsg
from nats.js.errors import BadRequestError
from nats.js.errors import NotFoundError as JsNotFound

from reelscale.core.errors import BadRequest, NotFound
from reelscale.events.nats.pull import HEARTBEAT_S, ContinuousPull
from reelscale.events.records import Record, StartAt, StartPosition, decode_event
from reelscale.events.store import ShardReader

if TYPE_CHECKING:
    from reelscale.events.nats.store import NatsEventStore

log = logging.getLogger("reelscale.events.nats")

KEY_HEADER = "Reelscale-Key"
MAX_ACK_PENDING = 20_000  # JetStream stops delivering to a consumer past this many unacked
CONSUMER_INACTIVE_S = 3600.0  # a consumer nobody pulled from for an hour is dropped
_POLL_WAIT_S = 0.005  # a read with no wait still gives a backlog this long to arrive
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


def record_from_msg(stream: str, msg: Msg, sequence: int, when: datetime) -> Record | None:
    return _make_record(stream, msg.subject, sequence, when, msg.headers, msg.data)


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
        self._pull: ContinuousPull | None = None
        self._cursor: int | None = None  # next sequence, when reading a closed shard
        self._unacked_since: float | None = None
        self._not_before: datetime | None = None  # AT_TIMESTAMP: skip records before this
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
        await self._drop_pull()
        self._unacked_since = None
        self._cursor = None
        self._not_before = None
        resume = (
            StartAt.at_sequence(self.checkpointed + 1)
            if self.checkpointed is not None
            else self._origin
        )
        if resume.position is StartPosition.AT_TIMESTAMP:
            # The server keeps nanoseconds and records carry microseconds (rounded), so
            # the consumer starts a little early and `_keep` drops what is before.
            self._not_before = resume.timestamp
        await self._start_at(resume)

    async def _start_at(self, resume: StartAt) -> None:
        """Read on from `resume`: with a consumer, or by direct gets if the shard is closed."""
        shard_map = await self.store.shard_map(self.stream, fresh=True)
        if shard_map.is_open(self.shard):
            try:
                await self._subscribe(resume)
                return
            except BadRequestError:
                pass  # closed between the map read and now: read it as a closed shard
        self._cursor = await self._cursor_for(resume)

    async def _subscribe(self, resume: StartAt) -> None:
        """(Re)create the group's consumer at `resume` and start pulling from it."""
        js = self.store.js
        durable = consumer_name(self.group, self.shard)
        with contextlib.suppress(JsNotFound):
            await js.delete_consumer(self.stream, durable)
        config = ConsumerConfig(
            durable_name=durable,
            filter_subject=self.subject,
            ack_policy=AckPolicy.EXPLICIT,  # a checkpoint acks each message it covers
            ack_wait=self.ack_wait_s,
            max_deliver=-1,
            max_ack_pending=MAX_ACK_PENDING,
            # The group's progress is its checkpoint in KV, and every subscribe recreates
            # the consumer from it, so the server may drop one nobody has pulled from for
            # a while: groups named per process (REUSE_PORT edges add their pid) then do
            # not pile up on the server across restarts.
            inactive_threshold=CONSUMER_INACTIVE_S,
        )
        if resume.position is StartPosition.AT_SEQUENCE:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = resume.sequence
        elif resume.position is StartPosition.AT_TIMESTAMP and resume.timestamp is not None:
            config.deliver_policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = resume.timestamp - _START_TIME_SLACK
        else:
            config.deliver_policy = DeliverPolicy.ALL
        await js.add_consumer(self.stream, config)
        pull = ContinuousPull(
            self.store.nc,
            stream=self.stream,
            consumer=durable,
            start=resume,
            convert=functools.partial(record_from_msg, self.stream),
        )
        self._pull = pull
        await pull.start_pulling()

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
        if self.overdue(self._unacked_since, self.store.clock.monotonic()):
            await self.rewind()  # read long ago and never checkpointed: deliver again
        if self._pull is not None:
            await self._check_pull()
        if self._pull is not None:
            records = await self._fetch(max_records, wait_s)
        else:
            records = await self._read_closed(max_records)
        if records and self._unacked_since is None:
            self._unacked_since = self.store.clock.monotonic()
        return records

    async def _fetch(self, max_records: int, wait_s: float) -> list[Record]:
        pull = self._pull
        assert pull is not None
        if not pull.buffer:
            if wait_s <= 0 and pull.may_have_more():
                wait_s = _POLL_WAIT_S
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_s
            while not pull.buffer and not pull.broken and not pull.gone:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                pull.check_alive()
                await pull.top_up()
                await pull.wait(min(remaining, HEARTBEAT_S))
                if self._closed:
                    raise NotFound("reader is closed")
                if pull is not self._pull:
                    return []  # rewound meanwhile: the next read starts from there
        records = [record for record in pull.take(max_records) if self._keep(record)]
        await pull.top_up()
        return records

    async def _check_pull(self) -> None:
        """Check the pull, or start it again, if it has run into trouble."""
        pull = self._pull
        assert pull is not None
        if pull.gone:
            raise NotFound(f"{pull.gone}: shard {self.shard} of {self.stream!r}")
        if pull.stalled:
            try:
                await self.store.js.consumer_info(
                    self.stream, consumer_name(self.group, self.shard)
                )
            except JsNotFound as exc:
                raise NotFound(f"no consumer for shard {self.shard} of {self.stream!r}") from exc
            pull.stalled = False
        if pull.broken and not pull.buffer:
            # Deliveries went missing on the way: carry on right after the last record
            # handed out, on a new consumer, so nothing is skipped or read out of order.
            log.warning(
                "restarting a shard's pull",
                extra={"stream": self.stream, "shard": self.shard, "why": pull.broken},
            )
            resume = StartAt.at_sequence(pull.taken + 1) if pull.taken is not None else pull.start
            await self._drop_pull()
            await self._start_at(resume)

    def _keep(self, record: Record) -> bool:
        if self._not_before is None:
            return True
        if record.timestamp < self._not_before:
            return False
        self._not_before = None  # timestamps only grow along a shard
        return True

    async def _read_closed(self, max_records: int) -> list[Record]:
        assert self._cursor is not None
        records: list[Record] = []
        while len(records) < max_records:
            record = await self.store.next_record(self.stream, self.shard, self._cursor)
            if record is None:
                break  # a closed shard takes no more records: nothing to wait for
            records.append(record)
            self._cursor = record.sequence + 1
        return records

    async def _checkpoint(self, sequence: int) -> None:
        saved = await self.store.send_checkpoint(
            self.stream, group=self.group, shard=self.shard, sequence=sequence
        )
        # The consumer's acks go out with the checkpoint (buffered writes), before
        # the checkpoint is known to be saved. That is safe: the checkpoint is what a
        # reader resumes from (opening or rewinding recreates the consumer there), and
        # acks only spare the server redeliveries (which the pull drops anyway) and keep
        # the consumer's counts for `lag`.
        pull = self._pull
        for msg in pull.ack_through(sequence) if pull is not None else ():
            with contextlib.suppress(Exception):
                await msg.ack()
        await saved()
        if self.last_read is not None and sequence >= self.last_read:
            self._unacked_since = None
        else:
            self._unacked_since = self.store.clock.monotonic()

    async def rewind(self) -> None:
        await self._position()

    async def _drop_pull(self) -> None:
        pull, self._pull = self._pull, None
        if pull is not None:
            await pull.stop()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._drop_pull()
            self.store.forget_reader(self)
