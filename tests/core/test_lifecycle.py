"""Services start in dependency order, stop in reverse, and supervised tasks restart."""

from __future__ import annotations

import asyncio

import pytest

from reelscale.core.lifecycle import Service, Supervisor
from reelscale.core.metrics import Metrics

pytestmark = pytest.mark.asyncio


class Recorder(Service):
    def __init__(self, name: str, log: list[str], fail_start: bool = False) -> None:
        super().__init__()
        self.name = name
        self.log = log
        self.fail_start = fail_start

    async def on_start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def on_stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_dependency_order_and_reverse_stop() -> None:
    log: list[str] = []
    supervisor = Supervisor()
    db = Recorder("db", log)
    api = Recorder("api", log)
    supervisor.add(api, depends_on=[db])  # added first, but needs db
    supervisor.add(db)
    await supervisor.start()
    assert supervisor.ready
    await supervisor.stop()
    assert log == ["start db", "start api", "stop api", "stop db"]


async def test_failed_start_stops_what_started() -> None:
    log: list[str] = []
    supervisor = Supervisor()
    db = supervisor.add(Recorder("db", log))
    supervisor.add(Recorder("api", log, fail_start=True), depends_on=[db])
    with pytest.raises(RuntimeError, match="cannot start"):
        await supervisor.start()
    assert log == ["start db", "stop db"]


async def test_crashing_task_is_restarted_and_counted() -> None:
    metrics = Metrics()
    runs: list[int] = []
    done = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise ValueError("boom")
        done.set()
        await asyncio.Event().wait()

    service = Recorder("worker", [])
    task = service.supervise("flaky", flaky, metrics=metrics)
    await service.start()
    await asyncio.wait_for(done.wait(), timeout=5)
    assert task.restarts == 2
    assert (
        metrics.registry.get_sample_value(
            "reelscale_supervised_task_restarts_total", {"task": "worker.flaky"}
        )
        == 2
    )
    await service.stop()  # cancels the task cleanly


async def test_dependency_cycle_is_refused() -> None:
    supervisor = Supervisor()
    a, b = Recorder("a", []), Recorder("b", [])
    supervisor.add(a, depends_on=[b])
    supervisor.add(b, depends_on=[a])
    with pytest.raises(RuntimeError, match="cycle"):
        await supervisor.start()


async def test_the_startup_heap_is_frozen_out_of_collections() -> None:
    # In a child process: freezing this one would keep every later test's garbage.
    import subprocess
    import sys

    code = (
        "import gc\n"
        "from reelscale.core.lifecycle import freeze_startup_heap\n"
        "assert gc.get_freeze_count() == 0\n"
        "freeze_startup_heap()\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
