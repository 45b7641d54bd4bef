"""HTTP/1.1 on the wire: hop-by-hop headers, heads, request ids, paths, problem responses.

Everything here works on bytes and is called on the request path, so it avoids parsing
more than it must. Header names are lower-cased once, when parsed.
"""

from __future__ import annotations

import itertools
import os
import re
from http import HTTPStatus
from urllib.parse import unquote

import orjson

# Connection-specific headers (RFC 9110 7.6.1, and RFC 2616's list): never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)
# Headers the proxy writes itself on the way up.
REPLACED_UPSTREAM = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-request-id", b"expect"}
)
# Request headers the proxy reads (and forwards unless listed above).
READ_UPSTREAM = frozenset({b"content-length", b"idempotency-key"})

# Response heads are forwarded as bytes and edited in place: one regex pass over the
# lower-cased head (same offsets as the original) finds the headers that decide framing and
# the hop-by-hop lines to cut. HTTP/1.1 allows no space before the colon, and llhttp has
# already refused a head that has one.
_RESPONSE_FACTS = re.compile(
    rb"\r\n(connection|keep-alive|proxy-connection|te|trailers?|upgrade|proxy-authenticate"
    rb"|proxy-authorization|transfer-encoding|content-length|x-request-id):"
)
_HOP_SET = HOP_BY_HOP | {b"trailers"}
# Connection values that name no other header (nearly every response): no token set needed.
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b""})
_CRLF = b"\r\n"

_STATUS_LINES = {
    int(status): f"HTTP/1.1 {int(status)} {status.phrase}\r\n".encode() for status in HTTPStatus
}
_REQUEST_ID_OK = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
PROBLEM_JSON = b"application/problem+json"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BEARER_CHALLENGE = (b"www-authenticate", b'Bearer realm="reelscale"')
LAST_CHUNK = b"0\r\n\r\n"


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in `Connection`: also hop-by-hop for this message."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(token.strip().lower() for token in value.split(b","))
    tokens.discard(b"close")
    tokens.discard(b"keep-alive")
    return frozenset(tokens)


class RequestIds:
    """Fresh request ids: a random per-process prefix and a counter (unique, and far cheaper
    than a uuid4 per request; they correlate logs, they are not secrets)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex().encode()
        self._counter = itertools.count(1)

    def choose(self, incoming: bytes | None) -> bytes:
        """Keep a sane incoming id; make one otherwise."""
        if incoming is not None and _REQUEST_ID_OK.match(incoming):
            return incoming
        return b"%s%010x" % (self._prefix, next(self._counter))


class ResponseHead:
    """What a response head says about framing, and the head as it goes to the client
    (followed by the body bytes that arrived with it, when those were passed in)."""

    __slots__ = ("chunked", "close_delimited", "data")

    def __init__(self, data: bytes, chunked: bool, close_delimited: bool) -> None:
        self.data = data
        self.chunked = chunked
        self.close_delimited = close_delimited


# Rewritten heads by the upstream head's exact bytes, one table per combination of the
# client's flags (keep_alive + 2 * http11 + 4 * bodiless). An instance answers the same
# head over and over (nginx's differs only by its Date line, once a second), so a lookup
# replaces the scan. The value is the head up to where X-Request-ID goes, the rest of it
# (None when the service sent its own id), and the framing facts. Bounded: a table that
# fills (heads with per-response values, such as ETag or Set-Cookie) is emptied.
_REWRITTEN: tuple[dict[bytes, tuple[bytes, bytes | None, bool, bool]], ...] = tuple(
    {} for _ in range(8)
)
_REWRITTEN_MAX = 256
_MAX_CACHED_HEAD = 1024  # longer heads are rare: rewritten each time, never kept


def rewrite_response_head(
    head: bytes,
    *,
    request_id: bytes,
    keep_alive: bool,
    http11: bool,
    bodiless: bool,
    rest: bytes = b"",
) -> ResponseHead:
    """The upstream's head (status line to the blank line) made fit for the client.

    Hop-by-hop headers (and any the Connection header names) are dropped, X-Request-ID is
    added if the service did not echo it, and a chunked body is passed through as it is
    to HTTP/1.1 clients (HTTP/1.0 clients get it de-chunked and close-delimited). `rest`,
    body bytes that arrived with the head, is appended to `data` (one copy, not two).
    A head seen before with the same flags is answered from `_REWRITTEN`."""
    table = _REWRITTEN[keep_alive + 2 * http11 + 4 * bodiless]
    known = table.get(head)
    if known is None:
        known = _rewrite(head, keep_alive=keep_alive, http11=http11, bodiless=bodiless)
        if len(head) <= _MAX_CACHED_HEAD:
            if len(table) >= _REWRITTEN_MAX:
                table.clear()
            table[head] = known
    before, after, chunked, close_delimited = known
    if after is None:
        data = before + rest if rest else before
    else:
        data = b"".join((before, request_id, after, rest))
    return ResponseHead(data, chunked, close_delimited)


def _rewrite(
    head: bytes, *, keep_alive: bool, http11: bool, bodiless: bool
) -> tuple[bytes, bytes | None, bool, bool]:
    """`rewrite_response_head` worked out: (the head up to where the request id goes, the
    head after it or None when the service sent its own, chunked, close-delimited).

    It runs for every head not seen before, so the common head (Content-Length, `Connection:
    keep-alive`) takes the short way: no token set for a plain Connection value, no sort
    unless lines named by Connection were added, and the result assembled in one join."""
    lowered = head.lower()
    chunked = has_length = has_id = False
    cuts: list[tuple[int, int]] = []
    named: set[bytes] | None = None
    for match in _RESPONSE_FACTS.finditer(lowered):
        name = match[1]
        if name == b"content-length":
            has_length = True
            continue
        if name == b"x-request-id":
            has_id = True
            continue
        value_start = match.end()
        line_end = lowered.find(b"\r\n", value_start)
        if name == b"transfer-encoding":
            chunked = chunked or b"chunked" in lowered[value_start:line_end]
            if http11:
                continue  # chunked framing passes through untouched
        elif name == b"connection":
            value = lowered[value_start:line_end]
            if value.strip() not in _PLAIN_CONNECTION:
                tokens = {t.strip() for t in value.split(b",")}
                tokens -= {b"close", b"keep-alive", b""}
                if tokens - _HOP_SET:
                    named = (named or set()) | (tokens - _HOP_SET)
        cuts.append((match.start(), line_end))
    if named:
        for name in named:
            for match in re.finditer(rb"\r\n" + re.escape(name) + rb":", lowered):
                cuts.append((match.start(), lowered.find(b"\r\n", match.end())))
        cuts.sort()
    pieces: list[bytes] = []
    position = 0
    for begin, finish in cuts:
        if begin >= position:
            pieces.append(head[position:begin])
            position = finish
    pieces.append(head[position:-2])  # up to the blank line: additions go before it
    if not has_id:
        pieces.append(b"x-request-id: ")
    before = b"".join(pieces)
    if not before.startswith(b"HTTP/1.1 "):
        before = b"HTTP/1.1" + before[8:]  # we speak 1.1 to clients whatever the instance did
    tail: list[bytes] = [_CRLF] if not has_id else []
    dechunk = chunked and not http11
    close_delimited = not bodiless and not chunked and not has_length
    if close_delimited or dechunk or not keep_alive:
        tail.append(b"connection: close\r\n")
    elif not http11:
        tail.append(b"connection: keep-alive\r\n")
    tail.append(_CRLF)
    after = b"".join(tail)
    if has_id:
        return before + after, None, chunked, close_delimited or dechunk
    return before, after, chunked, close_delimited or dechunk


def decision_path(target: bytes) -> str | None:
    """The decoded path that routing, classification and rate limits see.

    None for a target the proxy refuses: not origin-form (except `OPTIONS *`), or with dot
    segments (which the instances would not resolve the way the prefix router does).
    Percent-escapes are decoded first, so `/v1/%61uth` is routed and limited as
    `/v1/auth`."""
    if not target.startswith(b"/"):
        return "*" if target == b"*" else None
    raw = target.split(b"?", 1)[0]
    if b"%" in raw:
        path = unquote(raw.decode("latin-1"), errors="replace")
    elif b"/." not in raw:
        return raw.decode("latin-1")
    else:
        path = raw.decode("latin-1")
    for segment in path.split("/"):
        if segment in (".", ".."):
            return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return None
    return path


def response(
    status: int,
    body: bytes,
    *,
    content_type: bytes,
    request_id: bytes | None,
    close: bool,
    head_only: bool = False,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """A whole response the proxy answers itself."""
    parts = [
        status_line(status),
        b"content-type: ",
        content_type,
        b"\r\ncontent-length: %d\r\n" % len(body),
    ]
    if request_id is not None:
        parts += [b"x-request-id: ", request_id, b"\r\n"]
    for name, value in extra:
        parts += [name, b": ", value, b"\r\n"]
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head_only:
        parts.append(body)
    return b"".join(parts)


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None,
    request_id: bytes | None,
    close: bool,
    retry_after_s: float | None = None,
    head_only: bool = False,
    challenge: bool = False,
) -> bytes:
    """An RFC 9457 problem+json response, shaped like `core.problems.problem`.

    `challenge` adds `WWW-Authenticate: Bearer` (a 401 from token verification)."""
    title = HTTPStatus(status).phrase
    body: dict[str, object] = {
        "type": f"https://reelscale.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if request_id is not None:
        body["request_id"] = request_id.decode("latin-1")
    extra: tuple[tuple[bytes, bytes], ...] = (BEARER_CHALLENGE,) if challenge else ()
    if retry_after_s is not None:
        extra += ((b"retry-after", b"%d" % max(1, round(retry_after_s))),)
    return response(
        status,
        orjson.dumps(body),
        content_type=PROBLEM_JSON,
        request_id=request_id,
        close=close,
        head_only=head_only,
        extra=extra,
    )
