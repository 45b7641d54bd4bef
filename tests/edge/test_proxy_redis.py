"""Two real edge proxy processes (`reelscale serve --roles edge`) share one rate limit in Redis.

Uses the Redis at REELSCALE_TEST_REDIS_URL (default 127.0.0.1:6379): skipped with the reason
when it is unreachable, failed under CI=true. The client comes from a random loopback
address, so its bucket key is its own and nothing else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio

from tests.conftest import server_unreachable
from tests.e2e.server import free_port
from tests.edge.test_proxy import ok, origins

# An open route (no token needed), so the limit is all that can refuse it.
OPEN_PATH = "v1/catalog/artwork/{}/poster.svg"
REDIS_URL = os.environ.get("REELSCALE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        server_unreachable(f"Redis at {REDIS_URL}", exc)
    try:
        yield client
    finally:
        await client.aclose()


@contextlib.contextmanager
def edge_process(upstreams: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCALE_")}
    env |= {
        "REELSCALE_EDGE_UPSTREAMS": upstreams,
        "REELSCALE_EDGE_PORT": str(port),
        "REELSCALE_EDGE_REDIS_URL": REDIS_URL,
        # Practically no refill: the burst is all there is, across both processes.
        "REELSCALE_EDGE_ADDRESS_RATE_PER_S": "0.001",
        "REELSCALE_EDGE_ADDRESS_BURST": "10",
        "REELSCALE_EDGE_UTILISATION_SHEDDING": "false",
        "REELSCALE_LOG_LEVEL": "WARNING",
        # Its own data dir: the edge reads the platform secret there (never the user's).
        "REELSCALE_DATA_DIR": str(log.parent / f"edge-{port}"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelscale", "serve", "--roles", "edge"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            if process.poll() is not None:
                raise AssertionError(f"edge exited {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/healthz", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError(f"edge not healthy:\n{log.read_text()}")


async def test_two_edge_processes_share_one_address_limit_through_redis(
    redis_client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    key = f"{{reelscale:ratelimit}}:address:{address}"
    await redis_client.delete(key)
    async with origins(ok) as (default,):
        ports = [free_port(), free_port()]
        logs = [tmp_path / f"edge-{i}.log" for i in range(2)]
        with (
            edge_process(f"default={default.url}", ports[0], logs[0]) as first,
            edge_process(f"default={default.url}", ports[1], logs[1]) as second,
        ):
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            await wait_healthy(urls[0], first, logs[0])
            await wait_healthy(urls[1], second, logs[1])
            transport = httpx.AsyncHTTPTransport(local_address=address)
            async with httpx.AsyncClient(transport=transport) as http:
                statuses = []
                for i in range(20):
                    url = urls[i % 2]
                    statuses.append(
                        (await http.get(f"{url}/{OPEN_PATH.format(uuid.uuid4())}")).status_code
                    )
                throttled = await http.get(f"{urls[1]}/v1/catalog/artwork/x/poster.svg")
    try:
        # One burst of 10 across both processes, not 10 each.
        assert statuses.count(200) == 10, statuses
        assert statuses.count(429) == 10
        assert statuses[:10] == [200] * 10
        assert throttled.status_code == 429
        assert throttled.headers["content-type"] == "application/problem+json"
        assert int(throttled.headers["retry-after"]) >= 1
        assert len(default.seen) == 10
        assert {s.headers["x-forwarded-for"] for s in default.seen} == {address}
    finally:
        await redis_client.delete(key)
