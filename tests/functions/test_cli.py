"""`reelscale functions ...` as a real process against a real server on loopback.

The server is the platform app (accounts role, for the login) with a runtime of the
test's own attached (so the test controls its handler), served by uvicorn in this event
loop.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn

from reelscale.accounts.roles import Role
from reelscale.app import create_app
from reelscale.events.embedded import EmbeddedEventStore
from reelscale.events.records import Record
from reelscale.functions import BatchFailure, FunctionRegistry, FunctionsRuntime
from reelscale.functions.api import router
from tests.conftest import make_settings
from tests.e2e.server import free_port, reelscale_env
from tests.events.conftest import entries
from tests.functions.conftest import eventually
from tests.support import PASSWORD, grant, signup

pytestmark = pytest.mark.slow
NAME = "cli-check"


@dataclass
class Server:
    url: str
    admin: str
    member: str
    data_dir: Path
    handler: Picky


class Picky:
    def __init__(self) -> None:
        self.fixed = False
        self.seen: list[int] = []

    async def __call__(self, batch: list[Record]) -> BatchFailure | None:
        if not self.fixed and any(record.event.data["n"] % 2 for record in batch):
            raise ValueError("odd numbers refused")
        self.seen.extend(record.event.data["n"] for record in batch)
        return None


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    app = create_app(settings, "accounts")
    store = EmbeddedEventStore(tmp_path / "fn-events")
    registry = FunctionRegistry()
    handler = Picky()
    registry.function(NAME, stream="cli-source", batch_size=1, max_retries=0)(handler)
    runtime = FunctionsRuntime(store, registry, refresh_s=0.1)
    app.state.functions = runtime  # the routes look the runtime up on every request
    if not any(getattr(r, "path", "") == "/v1/ops/functions" for r in app.routes):
        app.include_router(router)  # not wired into create_app yet
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    uvicorn_server = uvicorn.Server(config)
    await store.start()
    await runtime.start()
    serving = asyncio.create_task(uvicorn_server.serve())
    try:
        await eventually(lambda: uvicorn_server.started, timeout_s=30)
        url = f"http://127.0.0.1:{port}"
        admin = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        member = f"member-{uuid.uuid4().hex[:8]}@example.com"
        async with httpx.AsyncClient(base_url=url) as http:
            await signup(http, admin)
            await signup(http, member)
        await grant(app, admin, Role.ADMIN)
        await store.put_batch("cli-source", entries(4))
        await eventually(lambda: letters(runtime, 2))
        yield Server(url, admin, member, tmp_path, handler)
    finally:
        uvicorn_server.should_exit = True
        await serving
        await runtime.stop()
        await store.stop()


async def letters(runtime: FunctionsRuntime, count: int) -> bool:
    return (await runtime.function_status(NAME)).dead_letters == count


async def cli(
    server: Server, *args: str, email: str | None = None, password: str = PASSWORD
) -> tuple[int | None, str, str]:
    env = reelscale_env(server.data_dir)
    env["REELSCALE_ADMIN_EMAIL"] = email or server.admin
    env["REELSCALE_ADMIN_PASSWORD"] = password
    env["COLUMNS"] = "200"  # a terminal's width; tables are cut to 80 columns without it
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reelscale", "functions", *args,
        env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, stdout.decode(), stderr.decode()


async def test_list_dead_letters_and_replay(server: Server) -> None:
    code, stdout, stderr = await cli(server, "list", "--json", "--url", server.url)
    assert code == 0, stderr
    (listed,) = json.loads(stdout)
    assert (listed["name"], listed["dead_letters"], listed["errors"]) == (NAME, 2, 2)

    code, stdout, stderr = await cli(server, "list", "--url", server.url)
    assert code == 0, stderr
    assert NAME in stdout
    assert "2 (2 new)" in stdout

    code, stdout, stderr = await cli(server, "dead-letters", NAME, "--json", "--url", server.url)
    assert code == 0, stderr
    assert [letter["event"]["data"]["n"] for letter in json.loads(stdout)] == [1, 3]

    code, stdout, stderr = await cli(server, "dead-letters", NAME, "--url", server.url)
    assert code == 0, stderr
    assert "retries_exhausted" in stdout
    assert "odd numbers" in stdout

    server.handler.fixed = True
    code, stdout, stderr = await cli(server, "replay", NAME, "--json", "--url", server.url)
    assert code == 0, stderr
    assert json.loads(stdout) == {"function": NAME, "replayed": 2, "skipped": 0}
    code, stdout, stderr = await cli(server, "replay", NAME, "--url", server.url)
    assert code == 0, stderr
    assert f"replayed 0 dead letter(s) of {NAME}" in stdout
    await eventually(lambda: sorted(server.handler.seen) == [0, 1, 2, 3])


@pytest.mark.parametrize(
    ("args", "who", "password", "code", "message"),
    [
        (("list",), "admin", "wrong password!", 1, "login refused: wrong email or password"),
        (("list",), "member", PASSWORD, 1, "may not do this: it needs the ops:read scope"),
        (("replay", NAME), "member", PASSWORD, 1, "it needs the ops:write scope"),
        (("dead-letters", "nope"), "admin", PASSWORD, 1, "no function named 'nope' (404)"),
        (("dead-letters", "../x"), "admin", PASSWORD, 2, "is not a function name"),
    ],
)
async def test_refusals_are_clear_and_without_a_traceback(
    server: Server, args: tuple[str, ...], who: str, password: str, code: int, message: str
) -> None:
    email = server.admin if who == "admin" else server.member
    got, stdout, stderr = await cli(
        server, *args, "--url", server.url, email=email, password=password
    )
    assert got == code, stderr
    assert message in " ".join(stderr.split())
    assert "Traceback" not in stderr + stdout


async def test_an_unreachable_server_is_exit_code_2(server: Server) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    code, _stdout, stderr = await cli(server, "list", "--url", nowhere)
    assert code == 2
    assert f"cannot reach the server at {nowhere}" in " ".join(stderr.split())
    assert "Traceback" not in stderr
