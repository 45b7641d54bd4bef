"""A continuous pull on one JetStream pull consumer, feeding a local buffer.

JetStream sends a pull consumer's messages only while a pull request is waiting, and a
`fetch` (one request per call, waited out to its timeout) leaves gaps between requests in
which records queue up on the server. So a reader keeps requests outstanding all the
time, on its own inbox, and the server sends each record as soon as it is stored:

    credit    messages asked for and not yet delivered (over all outstanding requests)
    buffer    records delivered and not yet taken by a read, in order
    unacked   messages delivered and not yet acked (a checkpoint acks each one it covers:
              the consumer's acks are explicit)

When credit plus buffer drops to half of PULL_BATCH the credit is topped back up, so the
buffer never holds more than about PULL_BATCH records. A request ends when it is used
up or expires (the server then says how much was left, and that is taken off the
credit); it asks for idle heartbeats, so a request lost on the way (a reconnect, a
server restart) is noticed when neither messages nor heartbeats come, and asked again.

Every delivery of a consumer carries the next delivery sequence. A gap means messages
were lost between the server and this buffer: the pull is then `broken`, and the reader
hands out what it holds and starts a new consumer right after it (see `reader`), so no
record is skipped and the shard stays in order. Redeliveries by the server (its
ack_wait) are dropped here: the reader keeps ack_wait itself and rewinds to the
checkpoint, as the embedded store does, instead of receiving old records after new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import Header, StatusCode

from reelscale.events.records import Record, StartAt

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.subscription import Subscription

log = logging.getLogger("reelscale.events.nats")

API_PREFIX = "$JS.API"  # the store's JetStream context uses the default API prefix
PULL_BATCH = 1000  # records asked for ahead of the reads (the buffer's bound)
PULL_EXPIRES_S = 30.0  # a request's life on the server; a new one follows it at once
HEARTBEAT_S = 1.0  # the server's idle heartbeat on a waiting request
MISSED_HEARTBEATS_S = 3 * HEARTBEAT_S  # silence past this means the requests are gone

_PENDING_MSGS = "Nats-Pending-Messages"  # on a status that ends a request: what it had left
_ACK_TOKENS = 9  # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<delivery>.<ns>.<pending>

# A record from a delivered message, its stream sequence and its stored time; None if
# the message is not one of ours.
Convert = Callable[[Msg, int, datetime], Record | None]


class ContinuousPull:
    def __init__(
        self,
        nc: Client,
        *,
        stream: str,
        consumer: str,
        start: StartAt,
        convert: Convert,
    ) -> None:
        self._nc = nc
        self._next_subject = f"{API_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._convert = convert
        self._sub: Subscription | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self.start = start  # where the consumer began: a restart with nothing taken
        self.buffer: deque[Record] = deque()
        self.unacked: deque[tuple[int, Msg]] = deque()
        self.credit = 0
        self.taken: int | None = None  # sequence of the last record a read took
        self.num_pending: int | None = None  # the server's backlog after the last delivery
        self.broken: str | None = None  # why the pull cannot go on (a lost delivery)
        self.gone: str | None = None  # the consumer no longer exists
        self.stalled = False  # no answer: the reader checks the consumer before asking again
        self._last_stream_seq = 0
        self._next_delivery = 1  # a new consumer's deliveries are numbered from 1
        self._heard = self._loop.time()
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start_pulling(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)
        await self.top_up()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._wake()

    # -- for the reader -------------------------------------------------------------------

    def may_have_more(self) -> bool:
        """Whether the server may hold more for us than has come (unknown until a delivery)."""
        return self.num_pending is None or self.num_pending > 0

    def take(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        buffer = self.buffer
        while buffer and len(out) < max_records:
            out.append(buffer.popleft())
        if out:
            self.taken = out[-1].sequence
        return out

    async def top_up(self) -> None:
        """Ask for more once credit plus buffer is down to half the batch."""
        if self._stopped or self.broken or self.gone or self.stalled or self._sub is None:
            return
        held = self.credit + len(self.buffer)
        if held > PULL_BATCH // 2:
            return
        if self.credit == 0:
            self._heard = self._loop.time()  # heartbeats are due from now on
        batch = PULL_BATCH - held
        request = {
            "batch": batch,
            "expires": int(PULL_EXPIRES_S * 1e9),
            "idle_heartbeat": int(HEARTBEAT_S * 1e9),
        }
        self.credit += batch
        try:
            await self._nc.publish(
                self._next_subject, json.dumps(request).encode(), reply=self._inbox
            )
        except NatsError:
            self.credit -= batch  # not sent (closed, or the reconnect buffer is full)

    def check_alive(self) -> None:
        """Forget credit that has gone silent for longer than heartbeats allow.

        The requests were lost (a reconnect, a server restart), or the consumer is gone:
        a request to a deleted consumer gets no answer at all. The reader looks it up
        before asking again.
        """
        if self.credit > 0 and self._loop.time() - self._heard > MISSED_HEARTBEATS_S:
            log.warning(
                "no messages or heartbeats on a pull; asking again",
                extra={"subject": self._next_subject, "credit": self.credit},
            )
            self.credit = 0
            self.stalled = True

    async def wait(self, timeout_s: float) -> None:
        """Until a record (or trouble) arrives, at most `timeout_s`."""
        if self.buffer or self.broken or self.gone or self._stopped or timeout_s <= 0:
            return
        waiter = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_later(timeout_s, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if self._waiter is waiter:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            _resolve(waiter)

    # -- from the server ------------------------------------------------------------------

    async def _on_msg(self, msg: Msg) -> None:
        if self._stopped:
            return
        self._heard = self._loop.time()
        headers = msg.headers
        status = headers.get(Header.STATUS) if headers else None
        if status:
            await self._on_status(status, headers or {})
            return
        if self.broken:
            return
        try:
            sequence, delivery, when, pending = _delivery_info(msg)
        except (NatsError, ValueError):
            return  # not a JetStream delivery: nothing of ours
        self.credit = max(0, self.credit - 1)
        if delivery != self._next_delivery:
            self.broken = f"delivery {delivery} came when {self._next_delivery} was due"
            self._wake()
            return
        self._next_delivery = delivery + 1
        if sequence <= self._last_stream_seq:
            return  # the server's redelivery of one we have: the reader keeps ack_wait
        self._last_stream_seq = sequence
        self.num_pending = pending
        self.unacked.append((sequence, msg))
        record = self._convert(msg, sequence, when)
        if record is None:
            # Published around the store (no key header, not a CloudEvent). Dropped with
            # a log line rather than blocking the shard forever; the next checkpoint acks it
            # with the records around it.
            log.error(
                "skipping a message that is not a reelscale record",
                extra={"subject": msg.subject, "sequence": sequence},
            )
            return
        self.buffer.append(record)
        self._wake()

    def ack_through(self, sequence: int) -> list[Msg]:
        """The messages to ack for a checkpoint at `sequence`: every one at or before it."""
        unacked = self.unacked
        covered = []
        while unacked and unacked[0][0] <= sequence:
            covered.append(unacked.popleft()[1])
        return covered

    async def _on_status(self, status: str, headers: dict[str, str]) -> None:
        if status == StatusCode.CONTROL_MESSAGE:
            return  # an idle heartbeat: the requests are alive
        description = headers.get(Header.DESCRIPTION, "")
        left = headers.get(_PENDING_MSGS, "")
        if status == StatusCode.CONFLICT and "Consumer Deleted" in description:
            self.gone = "the group's consumer was deleted (another reader took the shard?)"
            self.credit = 0
            self._wake()
            return
        if left.isdigit():
            # A request ended (expired, or filled up by size): what it had left is gone.
            self.credit = max(0, self.credit - int(left))
            await self.top_up()
            return
        if status == StatusCode.SERVICE_UNAVAILABLE:
            self.stalled = True  # no responders
        # Anything else ended some request without saying how much it had left; the next
        # read asks again (not from here, so an error cannot turn into a loop).
        self.credit = 0


def _delivery_info(msg: Msg) -> tuple[int, int, datetime, int]:
    """Stream sequence, delivery sequence, stored time and pending, from the ack subject.

    Parsed here rather than through nats-py's metadata, which builds more than a read
    needs; the time is rounded to microseconds the same way.
    """
    tokens = msg.reply.split(".")
    if len(tokens) == _ACK_TOKENS:
        when = datetime.fromtimestamp(int(tokens[7]) / 1_000_000_000.0, UTC)
        return int(tokens[5]), int(tokens[6]), when, int(tokens[8])
    meta = msg.metadata  # the longer form, with a domain and an account
    return meta.sequence.stream, meta.sequence.consumer, meta.timestamp, meta.num_pending


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
