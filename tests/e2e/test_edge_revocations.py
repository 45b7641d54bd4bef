"""A sign-out at accounts reaches `reelscale serve --roles edge` through NATS JetStream.

Accounts runs as a process on the shared stream; the edge runs as a process in front of it
with `REELSCALE_STREAM_URL` set, and its `default` pool is a small origin in this test that
answers 200 to anything and checks no token. So once the member signs out, only the edge
itself can refuse the old access token: it must have read `auth.session.revoked` from the
stream (the token is cached at the edge, and has 15 minutes left to live).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import free_port, reelscale_env, running
from tests.e2e.test_revocation_across_processes import NATS_URL, PASSWORD, require_nats
from tests.edge.test_proxy_auth import edge_process

pytestmark = pytest.mark.slow


class _Origin(BaseHTTPRequestHandler):
    """200 to any GET, no questions asked; counts what reached it."""

    reached: list[str] = []

    def do_GET(self) -> None:
        type(self).reached.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def trusting_origin() -> Iterator[tuple[str, list[str]]]:
    reached: list[str] = []
    handler = type("Origin", (_Origin,), {"reached": reached})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", reached
    finally:
        server.shutdown()
        server.server_close()


def test_a_sign_out_at_accounts_is_refused_by_the_edge_within_seconds(tmp_path: Path) -> None:
    require_nats()
    run = uuid.uuid4().hex[:6]
    accounts_env = reelscale_env(tmp_path / "accounts", stream_url=NATS_URL, instance=f"a{run}")
    with (
        running(accounts_env, "accounts", log=tmp_path / "accounts.log") as accounts_url,
        trusting_origin() as (origin_url, reached),
    ):
        port = free_port()
        edge_env = reelscale_env(tmp_path / "edge", stream_url=NATS_URL, instance=f"e{run}")
        edge_env |= {
            "REELSCALE_EDGE_UPSTREAMS": f"accounts={accounts_url};default={origin_url}",
            "REELSCALE_EDGE_PORT": str(port),
            "REELSCALE_EDGE_LIMIT_INITIAL": "512",  # the suite's floor is 512
        }
        with (
            edge_process(edge_env, port, tmp_path / "edge.log") as edge_url,
            httpx.Client(base_url=edge_url, timeout=30) as edge,
        ):
            email = f"leaver-{run}@example.com"
            credentials = {"email": email, "password": PASSWORD}
            assert edge.post("/v1/auth/signup", json=credentials).status_code == 201
            tokens = edge.post("/v1/auth/login", json=credentials).json()
            access = {"Authorization": f"Bearer {tokens['access_token']}"}
            # /v1/catalog has no pool here: the default origin serves it, checking nothing.
            assert edge.get("/v1/catalog/genres", headers=access).status_code == 200
            assert reached == ["/v1/catalog/genres"]

            signed_out = edge.post(
                "/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=access
            )
            assert signed_out.status_code == 204

            deadline = time.monotonic() + 15
            status = 200
            while time.monotonic() < deadline:
                status = edge.get("/v1/catalog/genres", headers=access).status_code
                if status == 401:
                    break
                time.sleep(0.1)
            assert status == 401, "the edge never learned of the sign-out"
            count = len(reached)
            refused = edge.get("/v1/catalog/genres", headers=access)
            assert refused.status_code == 401
            assert "signed out" in refused.json()["detail"]
            assert len(reached) == count, "a refused request reached the origin"
        log = (tmp_path / "edge.log").read_text()
        assert "does not follow revocations" not in log
