"""The origin the overload benchmark loads: a service of known capacity behind the edge.

It runs as its own process (uvicorn, one event loop), so the benchmark offers load over
real sockets. The service simulates work: a request of class P holds one of `workers`
slots for `COST_UNITS[P] * unit_s` seconds, so its capacity is known,

    capacity (cost units per second) = workers / unit_s

and a request beyond it waits for a slot, as requests queue for a real service's threads,
connections or cores.

Why the classes cost different amounts: a play authorization or a segment is a few key
lookups or one file read, while a browse row or a recommendation row reads and ranks many
titles. So C, the capacity for the request mix, is defined in those cost units, and at 10x C
the CRITICAL fifth of the traffic offers about half of the capacity, not all of it twice
over (which no admission policy could serve).

With `--shedding on` the EdgeMiddleware of an `EdgeRuntime` is in front, with the
platform's defaults (adaptive limit, partitions, utilisation shedding, CRITICAL wait) and no
rate limits (all the load comes from one address). With `--shedding off` the same
middleware runs with a limit it can never reach and no utilisation shedding, so both runs
pay the same per-request overhead and differ only in admission.

`/_bench/stats` (outside the edge) reports how long the edge took to refuse requests,
measured in the process, and the limit's course; `/_bench/reset` starts a new window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelscale.core.clock import SystemClock
from reelscale.core.lifecycle import freeze_startup_heap
from reelscale.core.settings import Settings
from reelscale.edge.adaptive import AdaptiveSettings
from reelscale.edge.middleware import EdgeMiddleware
from reelscale.edge.priority import Priority
from reelscale.edge.runtime import EdgeRuntime

# Relative cost of one request of each class (see the module docstring).
COST_UNITS: dict[Priority, float] = {
    Priority.CRITICAL: 1.0,
    Priority.DEGRADED: 2.0,
    Priority.BEST_EFFORT: 8.0,
    Priority.BULK: 4.0,
}

_OK = b'{"ok":true}'
_JSON = [(b"content-type", b"application/json"), (b"content-length", str(len(_OK)).encode())]


class SimulatedService:
    """Holds a worker slot for the class's cost, then answers 200."""

    def __init__(self, runtime: EdgeRuntime, *, workers: int, unit_s: float) -> None:
        self.classifier = runtime.classifier
        self.slots = asyncio.Semaphore(workers)
        self.unit_s = unit_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        priority = self.classifier.classify(
            method=scope["method"], path=scope["path"], headers=headers
        )
        cost = COST_UNITS[priority if priority is not None else Priority.BEST_EFFORT]
        async with self.slots:
            await asyncio.sleep(cost * self.unit_s)
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": _OK})


def _label(runtime: EdgeRuntime, scope: Scope) -> str:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    priority = runtime.classifier.classify(
        method=scope["method"], path=scope["path"], headers=headers
    )
    return (priority if priority is not None else Priority.BEST_EFFORT).label


class BenchWrapper:
    """Outside the edge: times refusals, answers the stats endpoints, runs the lifespan."""

    def __init__(self, edge: ASGIApp, runtime: EdgeRuntime) -> None:
        self.edge = edge
        self.runtime = runtime
        self.reject_s: dict[str, list[float]] = {p.label: [] for p in Priority}
        self.limits: list[int] = []
        self.shed_at_reset: dict[str, int] = {}
        self._sampler: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/_bench/"):
            await self._stats(scope, send)
            return
        started = time.perf_counter()
        reject_s = self.reject_s

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (429, 503):
                elapsed = time.perf_counter() - started
                reject_s[_label(self.runtime, scope)].append(elapsed)
            await send(message)

        await self.edge(scope, receive, timed_send)

    async def _stats(self, scope: Scope, send: Send) -> None:
        limiter = self.runtime.limiter
        if scope["path"] == "/_bench/reset":
            for times in self.reject_s.values():
                times.clear()
            self.limits.clear()
            self.shed_at_reset = self._shed()
            body: dict[str, Any] = {"reset": True}
        else:
            body = {
                "reject_s": self.reject_s,
                "limits": self.limits,
                "admitted": {p.label: limiter.admitted[p] for p in Priority},
                "shed": {
                    key: n - self.shed_at_reset.get(key, 0)
                    for key, n in self._shed().items()
                    if n > self.shed_at_reset.get(key, 0)
                },
            }
        payload = orjson.dumps(body)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _shed(self) -> dict[str, int]:
        shed = self.runtime.limiter.shed
        return {f"{p.label}:{reason}": n for (p, reason), n in shed.items()}

    async def _sample_limit(self) -> None:
        while True:
            self.limits.append(self.runtime.limiter.limit)
            await asyncio.sleep(0.1)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with self._running():
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    freeze_startup_heap()  # as the platform does once it has started
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        await self.runtime.start()
        self._sampler = asyncio.create_task(self._sample_limit())
        try:
            yield
        finally:
            self._sampler.cancel()
            await self.runtime.stop()


def build_origin(*, shedding: bool, workers: int, unit_s: float) -> BenchWrapper:
    """The service behind the edge, shedding or not, wrapped for measurement."""
    defaults = Settings()
    if shedding:
        runtime = EdgeRuntime(
            clock=SystemClock(),
            registry=CollectorRegistry(),
            rate_limits=(),
            adaptive=AdaptiveSettings(
                min_limit=defaults.edge_limit_min, max_limit=defaults.edge_limit_max
            ),
            critical_wait_s=defaults.edge_critical_wait_s,
        )
    else:
        unreachable = AdaptiveSettings(initial_limit=10**6, min_limit=10**6, max_limit=10**6)
        runtime = EdgeRuntime(
            clock=SystemClock(),
            registry=CollectorRegistry(),
            rate_limits=(),
            adaptive=unreachable,
            utilisation_shedding=False,
        )
    service = SimulatedService(runtime, workers=workers, unit_s=unit_s)
    return BenchWrapper(EdgeMiddleware(service, **runtime.middleware_options()), runtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--shedding", choices=("on", "off"), required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--unit-ms", type=float, required=True)
    parser.add_argument("--cpu", type=int, help="pin the origin to this CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    import uvicorn

    app = build_origin(
        shedding=args.shedding == "on", workers=args.workers, unit_s=args.unit_ms / 1000
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
