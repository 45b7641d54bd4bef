"""One request's journey through the proxy, as a state machine driven by callbacks.

NEW: the head is parsed (it may wait behind a pipelined request).
VERIFYING: waiting for a token the cache did not know to be verified (auth.py).
ADMITTING: waiting for a shared (Redis) rate-limit answer.
CONNECTING: waiting for a new connection to the chosen instance.
FORWARDING: bound to an upstream connection; the request streams up, the response down.
DONE: the response is complete, or was answered here, or the client left.

Bodies stream both ways in the pieces they arrive in. Nothing is held whole: a request
body waits in `body_pending` only until the upstream connection exists (reading from the
client pauses past a bound), and a small body (up to `retry_body_max_bytes`, declared by
Content-Length) is also kept until the response starts, so a safe retry can replay it.

Attributes that most requests never change are class-level defaults: the request path
sets only what differs.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from reelscale.core.errors import PlatformError, Unauthorized
from reelscale.core.identity import Principal
from reelscale.core.identity_headers import IDENTITY_HEADER_BYTES
from reelscale.edge.limiter import Permit, Rejected
from reelscale.edge.priority import Priority
from reelscale.edge.proxy import http1
from reelscale.edge.proxy.balancer import Instance, Pool
from reelscale.edge.proxy.retry import idempotent
from reelscale.edge.proxy.upstream import UpstreamConnection
from reelscale.edge.ratelimit import Decision

if TYPE_CHECKING:
    from reelscale.edge.proxy.auth import ProxyAuth
    from reelscale.edge.proxy.downstream import ClientConnection

NEW, ADMITTING, CONNECTING, FORWARDING, DONE, VERIFYING = range(6)
log = logging.getLogger("reelscale.edge.proxy")
PENDING_HIGH = 256 * 1024  # request body bytes held before the upstream is ready
_monotonic = time.monotonic
_BODILESS_STATUS = frozenset({204, 304})
_METHOD_NAMES: dict[bytes, str] = {}


def _method_name(method: bytes) -> str:
    name = _METHOD_NAMES.get(method)
    if name is None:
        name = method.decode("latin-1")
        if len(_METHOD_NAMES) < 64:
            _METHOD_NAMES[method] = name
    return name


_UPSTREAM_HEAD = (
    b"%s %s HTTP/1.1\r\n%s"
    b"x-forwarded-for: %s\r\nx-forwarded-proto: %s\r\nx-request-id: %s\r\n%s\r\n"
)


def _framed(chunk: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(chunk), chunk)


class Exchange:
    """A request from one client and the response that answers it."""

    state = NEW
    path = ""
    pool: Pool | None = None
    instance: Instance | None = None
    upstream: UpstreamConnection | None = None
    permit: Permit | None = None
    priority: Priority | None = None
    tried: list[Instance] | None = None
    status = 0
    upstream_head = b""
    response_head_sent = False
    close_delimited = False
    first_byte_deadline = 0.0
    read_deadline = 0.0
    # The request body.
    content_length: int | None = None
    chunked = False
    has_body = False
    request_done = True
    expect_continue = False
    idempotency_key = False
    forwarded_for: bytes | None = None
    # Set only for a request from a trusted proxy (edge/forwarded.py): the client its
    # X-Forwarded-For names, and the vouched-for chain to send up. Otherwise the TCP peer
    # is the client and goes up alone: a client's own X-Forwarded-For is dropped.
    address: str | None = None
    forwarded_chain: bytes | None = None
    # Identity: the Authorization header (only read when the edge verifies tokens), the
    # verified member and the signed identity header that goes up with the request.
    authorization: bytes | None = None
    member: str | None = None
    identity: bytes | None = None
    body_pending: list[bytes] | None = None
    body_pending_bytes = 0
    body_received = 0
    body_kept: list[bytes] | None = None
    body_lost = False  # body bytes went upstream and were not kept: no replay
    classified: dict[str, str] | None = None  # headers the classifier's rules read, if any

    def __init__(
        self,
        client: ClientConnection,
        method: bytes,
        target: bytes,
        headers: list[bytes],
        seen: dict[bytes, bytes] | None,
        *,
        keep_alive: bool,
        http11: bool,
    ) -> None:
        self.client = client
        self.proxy = proxy = client.proxy
        self.method = method
        self.target = target
        self.headers = headers  # forwarded header lines, flattened: name, ": ", value, CRLF
        self.keep_alive = keep_alive
        self.http11 = http11
        self.started = now = _monotonic()
        self.total_deadline = now + proxy.total_timeout_s
        incoming_id = None
        if seen is not None:
            incoming_id = self._read_special(seen)
        if client.trusted_peer and self.forwarded_for is not None:
            chain = proxy.trusted_proxies.chain(
                client.address, self.forwarded_for.decode("latin-1")
            )
            self.address = chain[0]
            self.forwarded_chain = ", ".join(chain).encode("latin-1")
        self.request_id = proxy.request_ids.choose(incoming_id)

    def _read_special(self, seen: dict[bytes, bytes]) -> bytes | None:
        """Take in the headers the proxy acts on (framing, ids, forwarding, rules)."""
        chunked = b"chunked" in seen.get(b"transfer-encoding", b"").lower()
        length = seen.get(b"content-length")
        if chunked:
            self.chunked = True
        elif length is not None:
            self.content_length = int(length)  # llhttp has checked it is digits
        if chunked or (length is not None and length != b"0"):
            self.has_body = True
            self.request_done = False
            self.expect_continue = seen.get(b"expect", b"").lower() == b"100-continue"
            length_now = self.content_length
            if (
                not chunked
                and length_now is not None
                and length_now <= self.proxy.retry_body_max_bytes
            ):
                self.body_kept = []
        if b"idempotency-key" in seen:
            self.idempotency_key = True
        self.forwarded_for = seen.get(b"x-forwarded-for")
        self.authorization = seen.get(b"authorization")
        wanted = self.proxy.classifier.header_names
        if wanted:
            classified = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in seen.items()
                if name.decode("latin-1") in wanted
            }
            self.classified = classified or None
        return seen.get(b"x-request-id")

    # ------------------------------------------------------------------ admission
    def start(self) -> None:
        """Route, admit under the limiter and the rate limits, then forward."""
        proxy = self.proxy
        target = self.target
        if target[:1] == b"/" and b"%" not in target and b"/." not in target:
            path = target.split(b"?", 1)[0].decode("latin-1")
        else:
            decoded = http1.decision_path(target)
            if decoded is None:
                proxy.stats.client_error("bad_target")
                self.fail(400, "The request target is not a valid path.", close=True)
                return
            path = decoded
        self.path = path
        if path in proxy.local_paths:
            proxy.serve_local(self)
            return
        # Proxy.pool_for, inlined (once per request).
        self.pool = proxy.pools.get(proxy.router.pool_for(path)) or proxy.pools["default"]
        if self.content_length is not None and self.content_length > proxy.max_body_bytes:
            self.fail(413, f"The body is larger than {proxy.max_body_bytes} bytes.", close=True)
            return
        method = _METHOD_NAMES.get(self.method) or _method_name(self.method)
        priority = proxy.classifier.classify(method, path, self.classified)
        if priority is not None:  # probes and scrapes (None) are never limited
            self.priority = priority
            outcome = proxy.limiter.try_acquire(priority)
            if isinstance(outcome, Rejected):
                self.fail(
                    503,
                    "The edge is shedding load; retry after the indicated time.",
                    retry_after_s=outcome.retry_after_s,
                )
                return
            self.permit = outcome
        # Admission first, so a flood of forged tokens is shed cheaply instead of verified;
        # then the token, before the rate limits (which key on the member) and any upstream.
        auth = proxy.auth
        if (
            auth is not None
            and not auth.is_open(method, path)
            and not self._identify(auth, method, path)
        ):
            return  # refused, or verifying (which continues in _rate_limit)
        self._rate_limit(method, path)

    # ------------------------------------------------------------------ identity
    def _identify(self, auth: ProxyAuth, method: str, path: str) -> bool:
        """True when the caller is verified now (a cached token); else refused or verifying."""
        raw = self.authorization
        try:
            token = auth.bearer(None if raw is None else raw.decode("latin-1"))
        except Unauthorized as exc:
            self._refuse_identity(exc)
            return False
        principal = auth.cached(token)
        if principal is None:
            self.state = VERIFYING
            self.proxy.spawn(self._verify(auth, token, method, path))
            return False
        self._identified(auth, principal, method, path)
        return True

    async def _verify(self, auth: ProxyAuth, token: str, method: str, path: str) -> None:
        try:
            principal = await auth.verify(token)
        except PlatformError as exc:
            if self.state == VERIFYING:
                self.state = NEW
                self._refuse_identity(exc)
            return
        except Exception:
            log.exception("token verification failed unexpectedly")
            if self.state == VERIFYING:
                self.state = NEW
                self.fail(500, "The edge could not verify the access token.")
            return
        if self.state != VERIFYING:
            return  # the client left meanwhile
        self.state = NEW
        self._identified(auth, principal, method, path)
        self._rate_limit(method, path)

    def _identified(self, auth: ProxyAuth, principal: Principal, method: str, path: str) -> None:
        self.member = principal.subject
        self.identity = auth.sign(principal, method, path)

    def _refuse_identity(self, exc: PlatformError) -> None:
        """401 with a Bearer challenge, or the key source's 503, answered here."""
        status = exc.status
        if status == 401:
            self.proxy.stats.client_error("unauthorized")
        self.fail(status, exc.detail, retry_after_s=exc.retry_after, challenge=status == 401)

    # ------------------------------------------------------------------ rate limits
    def _rate_limit(self, method: str, path: str) -> None:
        if self.priority is None:
            self._admitted()
            return
        proxy = self.proxy
        decision = proxy.check_rate_now(method, path, self.client, self.member, self.address)
        if decision is None:
            self.state = ADMITTING
            proxy.spawn(self._check_rate_shared(method, path))
        elif decision.allowed:
            self._admitted()
        else:
            self._rate_limited(decision)

    async def _check_rate_shared(self, method: str, path: str) -> None:
        address = self.address or self.client.address
        decision = await self.proxy.rate_limiter.check(
            method=method, path=path, member=self.member, address=address
        )
        if self.state != ADMITTING:
            return  # the client left meanwhile
        if decision.allowed:
            self._admitted()
        else:
            self._rate_limited(decision)

    def _rate_limited(self, decision: Decision) -> None:
        if self.permit is not None:
            self.permit.ignore()
            self.permit = None
        if self.priority is not None:
            self.proxy.limiter.reject(self.priority, "rate_limit")
        self.fail(
            429,
            "Too many requests; slow down and retry after the indicated time.",
            retry_after_s=decision.retry_after_s,
        )

    def _admitted(self) -> None:
        pool = self.pool
        assert pool is not None
        pool.budget.record_request()
        self.upstream_head = self._upstream_head()
        if self.expect_continue and not self.request_done:
            self.client.write(http1.CONTINUE)  # admitted: now the client may send the body
        instance = pool.pick()
        if instance is None:
            self.fail(503, "No instance of this service is available.", retry_after_s=5)
            return
        self._attempt(instance)

    def _upstream_head(self) -> bytes:
        address = self.forwarded_chain or self.client.address_bytes
        framing = b"transfer-encoding: chunked\r\n" if self.chunked else b""
        if self.authorization is not None:  # read only when the edge verifies tokens
            framing += b"authorization: %s\r\n" % self.authorization
        if self.identity is not None:
            framing += b"%s: %s\r\n" % (IDENTITY_HEADER_BYTES, self.identity)
        return _UPSTREAM_HEAD % (
            self.method,
            self.target,
            b"".join(self.headers),
            address,
            self.proxy.forwarded_proto,
            self.request_id,
            framing,
        )

    # ------------------------------------------------------------------ attempts
    def _attempt(self, instance: Instance) -> None:
        self.instance = instance
        instance.outstanding += 1
        connection = self.proxy.connections.take_idle(instance)
        if connection is None:
            self.state = CONNECTING
            self.proxy.connections.connect(self, instance)
        else:
            self._attach(connection)

    def connected(self, connection: UpstreamConnection) -> None:
        if self.state != CONNECTING or connection.instance is not self.instance:
            self.proxy.connections.put_idle(connection)  # abandoned meanwhile: keep it warm
            return
        self._attach(connection)

    def connect_failed(self, instance: Instance, error: BaseException) -> None:
        if self.state != CONNECTING or instance is not self.instance:
            return
        pool = self.pool
        assert pool is not None
        instance.outstanding -= 1
        self.state = NEW
        self.proxy.stats.upstream_error(pool.name, "connect")
        pool.failed(instance)
        self._retry_or_fail(instance, stale=False, detail="Could not connect to the service.")

    def _attach(self, connection: UpstreamConnection) -> None:
        self.state = FORWARDING
        self.upstream = connection
        connection.bind(self)
        if self.has_body:
            data = self._head_and_body()
        else:
            data = self.upstream_head
            self.first_byte_deadline = _monotonic() + self.proxy.first_byte_timeout_s
        connection.write(data)
        if self.client.write_paused:
            connection.pause_reading(True)

    def _head_and_body(self) -> bytes:
        parts = [self.upstream_head]
        framed = _framed if self.chunked else bytes
        kept = self.body_kept
        if kept:
            parts += [framed(chunk) for chunk in kept]
        pending = self.body_pending
        if pending:
            for chunk in pending:
                parts.append(framed(chunk))
                if kept is not None:
                    kept.append(chunk)
                else:
                    self.body_lost = True
            self.body_pending = None
            self.body_pending_bytes = 0
            self.client.pause_for_pending(False)
        if self.request_done:
            if self.chunked:
                parts.append(http1.LAST_CHUNK)
            self.first_byte_deadline = _monotonic() + self.proxy.first_byte_timeout_s
        return b"".join(parts)

    def _retry_or_fail(self, instance: Instance, *, stale: bool, detail: str) -> None:
        """After a failure that sent no response byte: retry elsewhere if safe and budgeted."""
        pool = self.pool
        assert pool is not None
        tried = self.tried
        if tried is None:
            tried = self.tried = []
        if not stale:
            tried.append(instance)  # a stale pooled connection may retry the same one
        if not self.body_lost and idempotent(self.method, idempotency_key=self.idempotency_key):
            following = pool.pick(tried)
            if following is not None and pool.budget.try_spend():
                self._attempt(following)
                return
        self.fail(502, detail)

    # ------------------------------------------------------------------ request body
    def request_body(self, chunk: bytes) -> None:
        self.body_received += len(chunk)
        if self.body_received > self.proxy.max_body_bytes:
            self._body_too_large()
            return
        state = self.state
        if state == FORWARDING:
            connection = self.upstream
            assert connection is not None
            connection.write(_framed(chunk) if self.chunked else chunk)
            if self.body_kept is not None:
                self.body_kept.append(chunk)
            else:
                self.body_lost = True
        elif state != DONE:
            if self.body_pending is None:
                self.body_pending = []
            self.body_pending.append(chunk)
            self.body_pending_bytes += len(chunk)
            if self.body_pending_bytes > PENDING_HIGH:
                self.client.pause_for_pending(True)

    def request_complete(self) -> None:
        self.request_done = True
        if self.state == FORWARDING:
            connection = self.upstream
            assert connection is not None
            if self.chunked:
                connection.write(http1.LAST_CHUNK)
            if not connection.received:
                self.first_byte_deadline = _monotonic() + self.proxy.first_byte_timeout_s

    def fail_timeout_from_client(self) -> None:
        """The client stopped sending its body mid-way."""
        self.fail(408, "The request body did not arrive in time.", close=True)

    def _body_too_large(self) -> None:
        if self.response_head_sent:
            self._abort_midstream("too_large")
            return
        self._release_upstream(failed=False)
        self.fail(413, f"The body is larger than {self.proxy.max_body_bytes} bytes.", close=True)

    # ------------------------------------------------------------------ response
    def response_head(
        self, head: bytes, rest: bytes, status: int, connection: UpstreamConnection
    ) -> bool:
        """Send the (edited) response head and any body bytes that came with it."""
        if connection is not self.upstream:
            connection.close()
            return False
        self.status = status
        self.first_byte_deadline = 0.0
        rewritten = http1.rewrite_response_head(
            head,
            request_id=self.request_id,
            keep_alive=self.keep_alive,
            http11=self.http11,
            bodiless=self.method == b"HEAD" or status in _BODILESS_STATUS,
            rest=rest,
        )
        if rewritten.close_delimited:
            self.close_delimited = True
            self.keep_alive = False
        self.client.write(rewritten.data)
        self.response_head_sent = True  # the caller starts the stall deadline if need be
        return True

    def response_complete(self, connection: UpstreamConnection, *, reusable: bool) -> None:
        if connection is not self.upstream:
            connection.close()
            return
        self.upstream = None
        if reusable and self.request_done and not self.close_delimited:
            self.proxy.connections.put_idle(connection)
        else:
            connection.close()
        pool, instance = self.pool, self.instance
        assert pool is not None
        assert instance is not None
        instance.outstanding -= 1
        status = self.status
        if status >= 500:
            pool.failed(instance)
        else:
            instance.consecutive_failures = 0
        permit = self.permit
        if permit is not None:
            if status == 503 or status == 504:
                permit.drop()  # the instance is overloaded: a congestion signal
            else:
                permit.release()
        self.proxy.stats.responded(pool.name, status, _monotonic() - self.started)
        self._done(self.keep_alive and self.request_done)

    def upstream_failed(self, connection: UpstreamConnection, kind: str) -> None:
        """The connection reset or sent garbage while this exchange used it."""
        if connection is not self.upstream:
            connection.close()
            return
        stale = kind == "reset" and connection.reused and not connection.received
        received = connection.received
        pool, instance = self.pool, self.instance
        assert pool is not None
        assert instance is not None
        self.upstream = None
        connection.close()
        instance.outstanding -= 1
        self.state = NEW
        self.proxy.stats.upstream_error(pool.name, "stale" if stale else kind)
        if not stale:
            pool.failed(instance)
        if self.response_head_sent:
            self._abort_midstream(kind)
        elif kind == "reset" and not received:
            self._retry_or_fail(instance, stale=stale, detail="The service closed the connection.")
        elif kind == "reset":
            self.fail(502, "The service closed the connection mid-response.")
        else:
            self.fail(502, "The service sent an invalid response.")

    # ------------------------------------------------------------------ endings
    def check(self, now: float) -> None:
        """Called by the timer sweep: enforce first-byte, idle and total deadlines."""
        state = self.state
        if state == DONE:
            return
        if now >= self.total_deadline:
            self._timed_out("The service did not complete the response in time.")
        elif state == FORWARDING:
            if self.first_byte_deadline and now >= self.first_byte_deadline:
                self._timed_out("The service did not answer in time.")
            elif self.response_head_sent and now >= self.read_deadline:
                self._timed_out("The service stalled mid-response.")

    def response_progress(self) -> None:
        """Body bytes arrived: the stall deadline moves on."""
        self.read_deadline = _monotonic() + self.proxy.idle_timeout_s

    def _timed_out(self, detail: str) -> None:
        pool = self.pool
        if pool is not None and self.state in (CONNECTING, FORWARDING):
            self.proxy.stats.upstream_error(pool.name, "timeout")
            self._release_upstream(failed=True)
        if self.response_head_sent:
            self._abort_midstream("timeout")
        else:
            self.fail(504, detail, drop=True)

    def _release_upstream(self, *, failed: bool) -> None:
        """Give up on the current attempt: close its connection, stop counting it."""
        connection, instance = self.upstream, self.instance
        if connection is not None:
            self.upstream = None
            connection.close()
        if instance is not None and self.state in (CONNECTING, FORWARDING):
            instance.outstanding -= 1
            if failed and self.pool is not None:
                self.pool.failed(instance)
        self.state = NEW  # no attempt in progress; an answer or an abort follows at once

    def _abort_midstream(self, kind: str) -> None:
        """The response already started downstream: all that is honest is to cut it short."""
        if self.state in (CONNECTING, FORWARDING):
            self._release_upstream(failed=False)
        if self.permit is not None:
            self.permit.ignore()
            self.permit = None
        self.proxy.stats.client_error(f"aborted_{kind}")
        self.state = DONE
        self.client.close()

    def client_gone(self) -> None:
        """The client closed its connection; stop whatever is under way."""
        if self.state == DONE:
            return
        if self.state in (CONNECTING, FORWARDING):
            self._release_upstream(failed=False)
        if self.permit is not None:
            self.permit.ignore()
            self.permit = None
        if self.pool is not None:
            self.proxy.stats.responded(self.pool.name, 499, _monotonic() - self.started)
        self.state = DONE

    def fail(
        self,
        status: int,
        detail: str,
        *,
        retry_after_s: float | None = None,
        close: bool = False,
        drop: bool = False,
        challenge: bool = False,
    ) -> None:
        """Answer here with problem+json, instead of (or in place of) the service."""
        if self.state == DONE:
            return
        if self.state in (CONNECTING, FORWARDING):
            self._release_upstream(failed=False)
        permit = self.permit
        if permit is not None:
            self.permit = None
            if drop:
                permit.drop()
            else:
                permit.ignore()
        close = close or not self.request_done or not self.keep_alive
        self.respond(
            status,
            http1.problem(
                status,
                detail,
                instance=self.path or None,
                request_id=self.request_id,
                close=close,
                retry_after_s=retry_after_s,
                head_only=self.method == b"HEAD",
                challenge=challenge,
            ),
            close=close,
        )

    def respond(self, status: int, data: bytes, *, close: bool) -> None:
        """Send a whole response made here and end the exchange."""
        self.client.write(data)
        self.response_head_sent = True
        self.status = status
        pool = self.pool.name if self.pool is not None else "edge"
        self.proxy.stats.responded(pool, status, _monotonic() - self.started)
        self._done(not close and self.keep_alive and self.request_done)

    def _done(self, keep_alive: bool) -> None:
        self.state = DONE
        if self.body_pending is not None:
            self.body_pending = None
        if self.body_kept is not None:
            self.body_kept = None
        self.client.exchange_done(self, keep_alive=keep_alive)
