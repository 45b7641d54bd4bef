"""A revocation made in one process reaches another through the shared event stream.

Accounts and catalog run as two processes on NATS JetStream. When a member signs out at
the accounts process, the catalog process (which only verifies tokens, against the JWKS)
learns of the ended session from the `auth` stream through its `revocations-<instance>`
function, and refuses the still-unexpired access token.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import server_unreachable
from tests.e2e.server import reelscale_env, running

pytestmark = pytest.mark.slow

NATS_URL = os.environ.get("REELSCALE_TEST_NATS_URL", "nats://127.0.0.1:4222")
PASSWORD = "a long enough password"


def require_nats() -> None:
    parts = urlsplit(NATS_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 3).close()
    except OSError as exc:
        server_unreachable(f"NATS at {NATS_URL}", exc)


def test_sign_out_reaches_a_process_that_only_verifies_tokens(tmp_path: Path) -> None:
    require_nats()
    run = uuid.uuid4().hex[:6]
    accounts_env = reelscale_env(tmp_path / "accounts", stream_url=NATS_URL, instance=f"a{run}")
    with running(accounts_env, "accounts", log=tmp_path / "accounts.log") as accounts_url:
        catalog_env = reelscale_env(
            tmp_path / "catalog",
            accounts_url=accounts_url,
            stream_url=NATS_URL,
            instance=f"c{run}",
        )
        with (
            running(catalog_env, "catalog", log=tmp_path / "catalog.log") as catalog_url,
            httpx.Client(base_url=accounts_url, timeout=30) as accounts,
            httpx.Client(base_url=catalog_url, timeout=30) as catalog,
        ):
            email = f"leaver-{run}@example.com"
            assert (
                accounts.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
            ).status_code == 201
            tokens = accounts.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            access = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
            assert catalog.get("/v1/catalog/genres", headers=access).status_code == 200

            signed_out = accounts.post(
                "/v1/auth/logout",
                json={"refresh_token": tokens.json()["refresh_token"]},
                headers=access,
            )
            assert signed_out.status_code == 204
            assert accounts.get("/v1/me", headers=access).status_code == 401  # at once, here

            deadline = time.monotonic() + 15
            status = 200
            while time.monotonic() < deadline:
                status = catalog.get("/v1/catalog/genres", headers=access).status_code
                if status == 401:
                    break
                time.sleep(0.1)
            assert status == 401, "the catalog process never learned of the sign-out"
