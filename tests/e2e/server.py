"""Run `reelscale` as a real process on loopback, for tests that cross process boundaries."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import EDGE_TEST_SETTINGS, TEST_SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reelscale_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCALE_")}
    env.update(
        {
            "REELSCALE_DATA_DIR": str(data_dir),
            "REELSCALE_SECRET_KEY": TEST_SECRET,
            "REELSCALE_ARGON2_MEMORY_KIB": "1024",
            "REELSCALE_ARGON2_TIME_COST": "1",
            "REELSCALE_ARGON2_PARALLELISM": "1",
            "REELSCALE_ENV": "test",
            **{f"REELSCALE_{k.upper()}": str(v) for k, v in EDGE_TEST_SETTINGS.items()},
        }
    )
    env.update({f"REELSCALE_{k.upper()}": v for k, v in settings.items()})
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run one `reelscale` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "reelscale", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextlib.contextmanager
def running(env: dict[str, str], roles: str = "all", *, log: Path) -> Iterator[str]:
    """Start `reelscale serve`, wait until /readyz answers, yield its URL, stop it cleanly."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelscale", "serve", "--roles", roles, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is a clean exit.
    output = log.read_text()
    assert process.returncode in (0, -signal.SIGTERM), f"exit {process.returncode}:\n{output}"
    assert "Application shutdown complete" in output
