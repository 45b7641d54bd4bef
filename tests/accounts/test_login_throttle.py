"""Failed-login throttling: per account, per address, backoff, and the trusted-device escape."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings, started
from tests.support import PASSWORD, login, signup

pytestmark = pytest.mark.asyncio


async def _attempt(
    c: httpx.AsyncClient, email: str, password: str = "wrong-password", **extra: Any
) -> httpx.Response:
    return await c.post("/v1/auth/login", json={"email": email, "password": password, **extra})


async def test_backoff_grows_then_relents(tmp_path: Path, database_url: str) -> None:
    async with started(make_settings(tmp_path, database_url)) as h:
        await signup(h.client, "slow@example.com")
        codes = [(await _attempt(h.client, "slow@example.com")).status_code for _ in range(5)]
        assert codes == [401] * 5
        throttled = await _attempt(h.client, "slow@example.com", PASSWORD)
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "1"
        h.clock.advance(1)
        assert (await _attempt(h.client, "slow@example.com")).status_code == 401
        assert (await _attempt(h.client, "slow@example.com")).status_code == 429
        h.clock.advance(2)
        ok = await _attempt(h.client, "slow@example.com", PASSWORD)
        assert ok.status_code == 200  # the right password still works once the wait is over
        # and success resets the run of failures
        assert [(await _attempt(h.client, "slow@example.com")).status_code for _ in range(5)] == [
            401
        ] * 5


async def test_at_most_100_failures_per_account_hour(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, login_backoff_after=10_000)
    async with started(settings) as h:
        await signup(h.client, "target@example.com")
        codes = [(await _attempt(h.client, "target@example.com")).status_code for _ in range(101)]
        assert codes.count(401) == 100
        assert codes[-1] == 429
        h.clock.advance(3600)
        assert (await _attempt(h.client, "target@example.com", PASSWORD)).status_code == 200


async def test_limit_holds_under_concurrent_guessing(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, login_backoff_after=10_000, login_failures_per_account_hour=5
    )
    async with started(settings) as h:
        await signup(h.client, "burst@example.com")
        responses = await asyncio.gather(
            *(_attempt(h.client, "burst@example.com") for _ in range(20))
        )
        codes = [r.status_code for r in responses]
        assert codes.count(401) == 5
        assert codes.count(429) == 15


async def test_trusted_device_is_not_locked_out(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, login_backoff_after=10_000, login_failures_per_account_hour=3
    )
    async with started(settings) as h:
        await signup(h.client, "victim@example.com")
        device = (await login(h.client, "victim@example.com"))["device_token"]
        # An attacker elsewhere exhausts the account's budget...
        for _ in range(3):
            assert (await _attempt(h.client, "victim@example.com")).status_code == 401
        assert (await _attempt(h.client, "victim@example.com", PASSWORD)).status_code == 429
        # ...but the member's own device still gets in.
        ok = await _attempt(h.client, "victim@example.com", PASSWORD, device_token=device)
        assert ok.status_code == 200
        # A device token forged for another account does not help.
        await signup(h.client, "other@example.com")
        forged = await _attempt(h.client, "other@example.com", PASSWORD, device_token=device)
        assert forged.status_code == 200  # no failures on that account yet: accepted normally
        for _ in range(3):
            await _attempt(h.client, "victim@example.com")
        stolen = await _attempt(
            h.client, "victim@example.com", PASSWORD, device_token=device[:-2] + "00"
        )
        assert stolen.status_code == 429


async def test_one_address_spraying_many_accounts(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, login_failures_per_address_hour=3)
    async with started(settings) as h:
        codes = [(await _attempt(h.client, f"spray{i}@example.com")).status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]
        assert "auth.login.failed" in h.event_types()
