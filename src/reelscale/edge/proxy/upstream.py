"""Connections to instances: the response side, and the keep-alive pool.

An `UpstreamConnection` serves one exchange at a time. The response is forwarded as the
bytes that arrive: the parser only watches them to find where the head and the message
end, the head is edited once (see `http1.rewrite_response_head`), and body bytes go to
the client untouched, chunked framing included. So a response streams through without
being held or copied piece by piece. (An HTTP/1.0 client cannot take chunked framing: for
it the parser's body pieces are forwarded instead.)

Between exchanges a connection waits in its instance's idle stack: last in, first out, so
the warmest connections are reused and the surplus ages out.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, cast

import httptools

from reelscale.edge.proxy.balancer import Instance

if TYPE_CHECKING:
    from reelscale.edge.proxy.exchange import Exchange

_monotonic = time.monotonic
MAX_RESPONSE_HEAD = 64 * 1024
_END_OF_HEAD = b"\r\n\r\n"


class _HeadResponseDone(Exception):
    """A response to HEAD has no body whatever its Content-Length says; stop parsing."""


class _Dechunking:
    """The parser's callbacks when body pieces are wanted (an HTTP/1.0 client's response is
    de-chunked): the connection's own plus `on_body`. httptools only calls back for body
    pieces when its protocol has `on_body`, so the connection itself has none: for every
    other client a response body is never copied into Python objects piece by piece."""

    __slots__ = ("on_body", "on_headers_complete", "on_message_complete")

    def __init__(self, connection: UpstreamConnection) -> None:
        self.on_headers_complete = connection.on_headers_complete
        self.on_message_complete = connection.on_message_complete
        self.on_body = connection.body_piece


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to one instance."""

    def __init__(self, connections: UpstreamConnections, instance: Instance) -> None:
        self.connections = connections
        self.instance = instance
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.dechunk = False  # forward the parser's body pieces instead of raw bytes
        self.parser = self._new_parser()
        self.reused = False  # served an exchange before the current one
        self.idle_since = 0.0
        self.closed = False
        self.reading_paused = False
        self.received = False  # any response byte for the current exchange
        self._buffer = b""  # a response head that has not arrived whole yet
        self._head_done = False
        self._complete = False
        self._keep_alive = False
        self._status = 0
        self._informational = 0  # 1xx heads before the final one, to skip
        self._early: list[bytes] = []  # de-chunked pieces parsed before the head went out

    def bind(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.received = False
        dechunk = not exchange.http11
        if dechunk != self.dechunk:
            # Between messages (a connection is only bound when idle or new), so a fresh
            # parser is where the old one would be: at the start of the next response.
            self.dechunk = dechunk
            self.parser = self._new_parser()
        self._buffer = b""
        self._head_done = self._complete = False
        self._informational = 0

    # ------------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.close()  # bytes nobody asked for: the instance is confused or closing
            return
        self.received = True
        if self._head_done:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                exchange.upstream_failed(self, "garbage")
                return
            if not self.dechunk:
                exchange.client.write(data)
            exchange.response_progress()
        else:
            if not self._receive_head(exchange, data):
                return
            if not self._complete:
                # The stall deadline starts with the head; a response that came whole
                # (nearly all small ones) needs none.
                exchange.response_progress()
        if self._complete and self.exchange is exchange:
            exchange.response_complete(self, reusable=self._keep_alive)

    def _receive_head(self, exchange: Exchange, data: bytes) -> bool:
        """Parse until the head is whole, then send it on; False when nothing more to do."""
        buffer = self._buffer + data if self._buffer else data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not isinstance(exc.__context__, _HeadResponseDone):
                exchange.upstream_failed(self, "garbage")
                return False
            self.parser = self._new_parser()
            self._complete = True
        if not self._head_done:
            if len(buffer) > MAX_RESPONSE_HEAD:
                exchange.upstream_failed(self, "garbage")
            else:
                self._buffer = buffer
            return False
        self._buffer = b""
        start = 0
        for _ in range(self._informational):
            start = buffer.index(_END_OF_HEAD, start) + 4
        end = buffer.index(_END_OF_HEAD, start) + 4
        rest = b"" if self.dechunk else buffer[end:]
        if not exchange.response_head(buffer[start:end], rest, self._status, self):
            return False
        if self._early:
            for piece in self._early:
                exchange.client.write(piece)
            self._early = []
        return True

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self.exchange
        if exchange is None:
            self.connections.forget(self)
        elif self._head_done and not self._complete and exchange.close_delimited:
            exchange.response_complete(self, reusable=False)  # the body ended with the close
        else:
            exchange.upstream_failed(self, "reset")

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.pause_for_upstream(True)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.pause_for_upstream(False)

    # ------------------------------------------------------------- parser callbacks
    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            raise RuntimeError("a response arrived with no request waiting")
        status = self.parser.get_status_code()
        if status < 200:
            self._informational += 1  # 100 or 103: the final response follows
            return
        self._status = status
        self._head_done = True
        self._keep_alive = self.parser.should_keep_alive()
        if exchange.method == b"HEAD":
            raise _HeadResponseDone

    def body_piece(self, body: bytes) -> None:
        """`on_body` while de-chunking (see `_Dechunking`)."""
        exchange = self.exchange
        if self.dechunk and exchange is not None:
            if exchange.response_head_sent:
                exchange.client.write(body)
            else:
                self._early.append(body)  # parsed in the same read as the head

    def on_message_complete(self) -> None:
        if self._head_done:
            self._complete = True
            self._keep_alive = self.parser.should_keep_alive()

    # ------------------------------------------------------------- use
    def _new_parser(self) -> httptools.HttpResponseParser:
        return httptools.HttpResponseParser(_Dechunking(self) if self.dechunk else self)

    def pause_reading(self, paused: bool) -> None:
        """Stop reading the response while the client cannot take more (and resume)."""
        if paused != self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = paused
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        self.exchange = None
        self.connections.forget(self)


class UpstreamConnections:
    """Idle keep-alive connections per instance, and new connections when none is idle."""

    def __init__(self, *, connect_timeout_s: float, idle_timeout_s: float, max_idle: int) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_idle = max_idle
        self.idle: dict[Instance, list[UpstreamConnection]] = {}
        self._connecting: set[asyncio.Task[None]] = set()

    def take_idle(self, instance: Instance) -> UpstreamConnection | None:
        stack = self.idle.get(instance)
        while stack:
            connection = stack.pop()
            transport = connection.transport
            if not connection.closed and transport is not None and not transport.is_closing():
                return connection
        return None

    def put_idle(self, connection: UpstreamConnection) -> None:
        connection.exchange = None
        if connection.closed:
            return
        if connection.reading_paused:
            connection.pause_reading(False)
        stack = self.idle.get(connection.instance)
        if stack is None:
            stack = self.idle[connection.instance] = []
        if len(stack) >= self.max_idle:
            connection.close()
            return
        connection.reused = True
        connection.idle_since = _monotonic()
        stack.append(connection)

    def forget(self, connection: UpstreamConnection) -> None:
        stack = self.idle.get(connection.instance)
        if stack and connection in stack:
            stack.remove(connection)

    def connect(self, exchange: Exchange, instance: Instance) -> None:
        """Open a connection in the background; the exchange hears back either way."""
        task = asyncio.get_running_loop().create_task(self._connect(exchange, instance))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, exchange: Exchange, instance: Instance) -> None:
        loop = asyncio.get_running_loop()
        origin = instance.origin
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _transport, connection = await loop.create_connection(
                    lambda: UpstreamConnection(self, instance), origin.host, origin.port
                )
        except (OSError, TimeoutError) as exc:
            exchange.connect_failed(instance, exc)
            return
        exchange.connected(connection)

    def sweep(self, now: float) -> None:
        """Close connections idle past the timeout (the oldest sit at the bottom)."""
        cutoff = now - self.idle_timeout_s
        for stack in self.idle.values():
            while stack and stack[0].idle_since < cutoff:
                stack.pop(0).close()

    def close_all(self) -> None:
        for stack in self.idle.values():
            for connection in list(stack):
                connection.close()
        self.idle.clear()
        for task in list(self._connecting):
            task.cancel()
