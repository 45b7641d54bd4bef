"""Client connections: parse requests, guard against abusive clients, write responses.

Abuse is bounded here, before any upstream work:
- a request head must arrive whole within `header_timeout_s` of its first byte, so a
  client trickling bytes (slowloris) is answered 408 and closed;
- a head over `max_header_bytes` (or with too many headers) is answered 431, a target over
  `max_url_bytes` 414, and nothing past those bounds is held;
- bytes that are not HTTP/1.x are answered 400 and the connection closed;
- a kept-alive connection idle past `keepalive_timeout_s` is closed.

Reading pauses while the upstream cannot take more of a request body, while a body waits
for its connection, or while a pipelined request waits its turn; when the client cannot
take more of a response, reading from the upstream pauses instead. So memory per
connection stays bounded whatever the sizes and speeds on either side.

Headers are handled as they are parsed: the ones the proxy acts on (framing, ids,
forwarding, hop-by-hop, the classifier's) are set aside in `_seen`, the rest are appended
to the upstream head as they stand.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING, cast

import httptools

from reelscale.edge.proxy import http1
from reelscale.edge.proxy.exchange import Exchange
from reelscale.edge.ratelimit import TokenBucket

if TYPE_CHECKING:
    from reelscale.edge.proxy.server import Proxy

_monotonic = time.monotonic

# What the connection-level deadline is waiting for.
NONE, IDLE, HEADER, BODY, LINGER = range(5)
# Why reading from the client is paused (any reason keeps it paused).
_UPSTREAM_FULL, _PENDING_FULL, _PIPELINED = 1, 2, 4
# Bytes a request head may grow past max_header_bytes before the coarse guard (which counts
# whole reads, including any tail of the previous request) refuses it.
_HEAD_SLACK = 512 * 1024
_SEPARATOR, _CRLF = b": ", b"\r\n"
# After refusing a client that may still be sending, read and discard for this long before
# closing: closing with unread input makes the kernel send a reset, which can destroy the
# refusal before the client reads it.
LINGER_S = 2.0


class _Refused(Exception):
    """Raised inside a parser callback once the connection has been answered and closed."""


class ClientConnection(asyncio.Protocol):
    """One client's connection: requests in order, one exchange answered at a time."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.address_bytes = b""
        self.rate_buckets: list[tuple[str, TokenBucket]] = []
        # A trusted proxy's connection carries many clients: their requests are keyed by
        # the address X-Forwarded-For names (exchange.py); the last one's buckets are kept.
        self.trusted_peer = False
        self._forwarded_buckets: tuple[str, list[tuple[str, TokenBucket]]] | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current: Exchange | None = None  # being answered
        self.receiving: Exchange | None = None  # whose request bytes are arriving
        self.queued: collections.deque[Exchange] = collections.deque()
        self.deadline = 0.0
        self.deadline_kind = NONE
        self.paused = 0
        self.write_paused = False
        self.closed = False
        self._head_open = False
        self._head_bytes = 0
        self._header_bytes = 0
        self._header_count = 0
        self._url = b""
        self._headers: list[bytes] = []
        self._seen: dict[bytes, bytes] | None = None
        self._eof = False
        self._special = proxy.special_headers
        self._dropped = proxy.dropped_headers
        self._max_header_bytes = proxy.max_header_bytes
        self._max_headers = proxy.max_headers

    # ------------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        proxy = self.proxy
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        self.address_bytes = self.address.encode("latin-1")
        self.rate_buckets = proxy.address_buckets(self.address)
        self.trusted_peer = proxy.trusted_proxies.trusts(self.address)
        transport.set_write_buffer_limits(high=512 * 1024, low=128 * 1024)
        stats = proxy.stats
        stats.connections_total += 1
        if len(proxy.clients) >= proxy.max_connections:
            stats.client_error("too_many_connections")
            self._refuse(503, "The edge has too many connections; retry shortly.", 2, linger=False)
            return
        proxy.clients.add(self)
        stats.connections_open += 1
        self._expect(HEADER, proxy.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return  # closing, or lingering: what still arrives is discarded
        if self.deadline_kind == IDLE:  # the first byte of the next request
            self.deadline_kind = HEADER
            self.deadline = _monotonic() + self.proxy.header_timeout_s
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            return  # refused in on_headers_complete
        except httptools.HttpParserError as exc:
            if not self.closed and not isinstance(exc.__context__, _Refused):
                self.proxy.stats.client_error("malformed")
                self._refuse(400, "The request is not valid HTTP/1.1.")
            return
        if self._head_open:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_header_bytes + _HEAD_SLACK:
                self.proxy.stats.client_error("header_too_large")
                self._refuse(431, "The request head is too large.")

    def eof_received(self) -> bool:
        # A half-closed client may still be owed a response: keep the connection open to
        # write it, and close once it is done (no further request can come).
        self._eof = True
        return self.current is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        proxy = self.proxy
        if self in proxy.clients:
            proxy.clients.discard(self)
            proxy.stats.connections_open -= 1
        current, self.current = self.current, None
        if current is not None:
            current.client_gone()
        while self.queued:
            self.queued.popleft().client_gone()
        if self.receiving is not None:
            self.receiving.client_gone()
            self.receiving = None

    def pause_writing(self) -> None:
        self.write_paused = True
        current = self.current
        if current is not None and current.upstream is not None:
            current.upstream.pause_reading(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        current = self.current
        if current is not None and current.upstream is not None:
            current.upstream.pause_reading(False)

    # ------------------------------------------------------------- parser callbacks
    def on_url(self, url: bytes) -> None:
        if self._head_open:
            self._url += url  # a target split across reads
            if len(self._url) > self.proxy.max_url_bytes:
                self.proxy.stats.client_error("url_too_long")
                self._refuse(414, "The request target is too long.")
                raise _Refused
            return
        self._head_open = True
        self._head_bytes = self._header_bytes = self._header_count = 0
        self._url = url
        self._headers = []
        self._seen = None
        if len(url) > self.proxy.max_url_bytes:
            self.proxy.stats.client_error("url_too_long")
            self._refuse(414, "The request target is too long.")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        self._header_count += 1
        if self._header_bytes > self._max_header_bytes or self._header_count > self._max_headers:
            self.proxy.stats.client_error("header_too_large")
            self._refuse(431, "The request head is too large.")
            raise _Refused
        lower = name.lower()
        if lower in self._special:
            seen = self._seen
            if seen is None:
                seen = self._seen = {}
            if lower == b"x-forwarded-for" and lower in seen:
                value = b"%s, %s" % (seen[lower], value)  # several lines: one list, in order
            seen[lower] = value
            if lower in self._dropped:
                return
        self._headers += (name, _SEPARATOR, value, _CRLF)

    def on_headers_complete(self) -> None:
        self._head_open = False
        parser = self.parser
        if self._header_bytes + len(self._url) > self._max_header_bytes:
            self.proxy.stats.client_error("header_too_large")
            self._refuse(431, "The request head is too large.")
            raise _Refused
        if parser.should_upgrade():
            self.proxy.stats.client_error("upgrade")
            self._refuse(501, "Protocol upgrades (such as WebSocket) are not proxied.")
            raise _Refused
        headers, seen = self._headers, self._seen
        if seen is not None and b"connection" in seen:
            headers = _without_named(headers, seen[b"connection"])
        keep_alive = parser.should_keep_alive()
        if keep_alive and (
            seen is None or (b"connection" not in seen and b"proxy-connection" not in seen)
        ):
            # llhttp keeps a connection that no (Proxy-)Connection header speaks of open for
            # HTTP/1.1 only (the one version it accepts, of 0.9, 1.0, 1.1 and 2.0, with both
            # numbers above 0), so the version is known without get_http_version, which
            # formats a string (a fifth of a microsecond, every request).
            http11 = True
        else:
            http11 = parser.get_http_version() == "1.1"
        exchange = Exchange(
            self,
            parser.get_method(),
            self._url,
            headers,
            seen,
            keep_alive=keep_alive,
            http11=http11,
        )
        self.receiving = exchange
        if exchange.has_body:
            self._expect(BODY, self.proxy.body_timeout_s)
        else:
            self.deadline_kind = NONE
            self.deadline = 0.0
        if self.current is None:
            self.current = exchange
            exchange.start()
        else:
            self.queued.append(exchange)
            self._pause(_PIPELINED, True)

    def on_body(self, body: bytes) -> None:
        exchange = self.receiving
        if exchange is not None:
            if self.deadline_kind == BODY and self.deadline:
                self.deadline = _monotonic() + self.proxy.body_timeout_s
            exchange.request_body(body)

    def on_message_complete(self) -> None:
        exchange, self.receiving = self.receiving, None
        if exchange is not None and exchange.has_body:
            if self.deadline_kind == BODY:
                self._expect(NONE, 0.0)
            exchange.request_complete()

    # ------------------------------------------------------------- used by exchanges
    def buckets_for(self, address: str) -> list[tuple[str, TokenBucket]]:
        """The per-address buckets of a client behind this (trusted) peer."""
        if address == self.address:
            return self.rate_buckets
        cached = self._forwarded_buckets
        if cached is None or cached[0] != address:
            cached = self._forwarded_buckets = (address, self.proxy.address_buckets(address))
        return cached[1]

    def write(self, data: bytes) -> None:
        if not self.closed:
            transport = self.transport
            assert transport is not None
            transport.write(data)

    def exchange_done(self, exchange: Exchange, *, keep_alive: bool) -> None:
        if exchange is not self.current:
            return
        self.current = None
        if not keep_alive or self.closed or (self._eof and not self.queued):
            # Input may still be coming (an early answer to a request with a body).
            self.close(linger=self.receiving is not None or self._head_open)
            return
        if self.queued:
            following = self.current = self.queued.popleft()
            if not self.queued:
                self._pause(_PIPELINED, False)
            following.start()
        elif self.receiving is None and not self._head_open:
            self.deadline_kind = IDLE
            self.deadline = _monotonic() + self.proxy.keepalive_timeout_s

    def pause_for_upstream(self, paused: bool) -> None:
        self._pause(_UPSTREAM_FULL, paused)

    def pause_for_pending(self, paused: bool) -> None:
        self._pause(_PENDING_FULL, paused)

    def close(self, *, linger: bool = False) -> None:
        """Close after what was written is flushed; `linger` first drains the client's input
        (for a refusal sent while the client may still be sending)."""
        if self.closed:
            return
        self.closed = True
        transport = self.transport
        if transport is None:
            return
        if linger and transport.can_write_eof():
            transport.write_eof()
            self.paused = 0
            transport.resume_reading()
            self.deadline_kind = LINGER
            self.deadline = _monotonic() + LINGER_S
        else:
            transport.close()

    def shut(self) -> None:
        """Close now, lingering or not (shutdown)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------- deadlines
    def check(self, now: float) -> None:
        """Called by the timer sweep."""
        if self.deadline and now >= self.deadline:
            kind = self.deadline_kind
            self._expect(NONE, 0.0)
            if kind == LINGER:
                if self.transport is not None:
                    self.transport.close()
                return
            if kind == IDLE:
                self.close()
                return
            self.proxy.stats.client_error("header_timeout" if kind == HEADER else "body_timeout")
            receiving = self.receiving
            if (
                kind == BODY
                and receiving is not None
                and receiving is self.current
                and not receiving.response_head_sent
            ):
                receiving.fail_timeout_from_client()
                return
            if self.current is None:
                self._refuse(408, "The request did not arrive in time.")
            else:
                self.close()
            return
        current = self.current
        if current is not None:
            current.check(now)

    def _expect(self, kind: int, timeout_s: float) -> None:
        self.deadline_kind = kind
        self.deadline = _monotonic() + timeout_s if kind != NONE else 0.0

    def _pause(self, reason: int, paused: bool) -> None:
        before = self.paused
        after = before | reason if paused else before & ~reason
        self.paused = after
        transport = self.transport
        if transport is None or self.closed or bool(before) == bool(after):
            return
        if after:
            transport.pause_reading()
            if self.deadline_kind == BODY:
                self.deadline = 0.0  # we stopped reading: the client is not the slow one
        else:
            transport.resume_reading()
            if self.deadline_kind == BODY:
                self.deadline = _monotonic() + self.proxy.body_timeout_s

    def _refuse(
        self,
        status: int,
        detail: str,
        retry_after_s: float | None = None,
        *,
        linger: bool = True,
    ) -> None:
        """Answer a connection-level problem (when no response is under way) and close."""
        if self.current is None and self.transport is not None and not self.closed:
            self.transport.write(
                http1.problem(
                    status,
                    detail,
                    instance=None,
                    request_id=None,
                    close=True,
                    retry_after_s=retry_after_s,
                )
            )
        self.close(linger=linger)


def _without_named(headers: list[bytes], connection: bytes) -> list[bytes]:
    """Drop the header lines a Connection header names (they are hop-by-hop too)."""
    named = {token.strip().lower() for token in connection.split(b",")}
    named -= {b"close", b"keep-alive", b""}
    if not named:
        return headers
    kept: list[bytes] = []
    for i in range(0, len(headers), 4):
        if headers[i].lower() not in named:
            kept += headers[i : i + 4]
    return kept
