"""`reelscale bench proxy`: proxied requests per second per core, the edge against nginx.

Three paths to one origin, measured with wrk for the same time at the same concurrency:
direct (wrk to the origin: the ceiling the origin and load tool allow), nginx as a
reverse proxy (`worker_processes 1`, keep-alive upstream pool), and the edge
(`reelscale serve --roles edge`, one process). The origin is nginx answering a fixed body
from memory, so it costs almost nothing and is identical for every path; the bench
measures what the proxy in the middle costs.

Per core: the proxy under test is pinned to one core with taskset, and the origin and wrk
to the other(s). Each proxy's CPU time during the run is read from /proc, and its rate is
divided by the cores it used (CPU seconds per wall second), so a proxy that was not
saturated (the load tool's core ran out first) is not under-counted. Only 2xx responses
count: a request the edge shed (503) or throttled (429) is not a proxied request.

The request path is a media segment (`/media/s/...`), which the classifier puts in
CRITICAL: the edge's CPU-based shedding, meant for overload, leaves it alone, while it
would shed lower classes on a core kept at 100% by the benchmark itself. Signed media
paths are on the edge's open-route allow-list (they carry their own HMAC), so no token is
sent or verified: the bench measures the proxying path, as before token checks existed.

With `native=True` (`reelscale bench proxy --native`) the same run also measures the edge
built with mypyc (reelscale.edge.native): the same command from the build's directory,
after checking in the running process's memory map that the compiled modules are the ones
it loaded.

`python -m reelscale.edge.bench_proxy` measures the proxy's own Python time for the same
request in process (`in_process`): the real request path, with transports that only
collect what is written, so no socket, kernel or load tool is in the figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reelscale.edge import native
from reelscale.edge.cpus import split_cpus

Log = Callable[[str], None]
BENCH_PATH = "/media/s/bench/0/sig/asset/seg-00001.m4s"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    non_2xx: int
    seconds: float
    errors: int

    @property
    def ok_rps(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0


def ensure_tool(command: str, package: str, log: Log) -> str:
    """The tool's path, installing its Debian package with apt-get when it is missing."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"{command} is missing; install the Debian package {package!r}")
    log(f"{command} not found: installing the Debian package {package!r} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = shutil.which("apt-get") or "apt-get"
    subprocess.run([apt, "update", "-qq"], check=True, env=env)  # noqa: S603 - fixed argv
    subprocess.run([apt, "install", "-y", "-qq", package], check=True, env=env)  # noqa: S603
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError(f"installed {package!r} but {command} is still not on PATH")
    return found


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports. The sockets stay open until all are chosen: closed one
    by one, the kernel may hand the same port out twice, and since the origin listens with
    `reuseport`, an edge given its port would share it and the edge's figures would be the
    origin's."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout_s} s")


def pinned(cores: set[int] | None, argv: list[str]) -> list[str]:
    if not cores or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", ",".join(str(c) for c in sorted(cores)), *argv]


def process_tree_cpu_s(root: int) -> float:
    """User plus system CPU seconds of a process and its children (nginx's workers)."""
    total = 0.0
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue
        pid = int(stat_file.parent.name)
        fields = text[text.rindex(")") + 2 :].split()
        parent = int(fields[1])
        if pid == root or parent == root:
            total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return total


def run_wrk(
    wrk: str, url: str, *, seconds: float, connections: int, cores: set[int] | None
) -> WrkResult:
    argv = pinned(cores, [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url])
    out = subprocess.run(  # noqa: S603 - wrk from PATH, arguments built here
        argv, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    return parse_wrk(out.stdout)


def parse_wrk(text: str) -> WrkResult:
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"could not read wrk's output:\n{text}")
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[match[3]]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return WrkResult(
        requests=int(match[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        seconds=float(match[2]) * unit,
        errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


ORIGIN_CONF = """
worker_processes 1;
daemon off;
pid {dir}/origin.pid;
error_log {dir}/origin-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    location / {{ default_type text/plain; return 200 "{body}"; }}
  }}
}}
"""

NGINX_PROXY_CONF = """
worker_processes 1;
daemon off;
pid {dir}/proxy.pid;
error_log {dir}/proxy-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp;
  proxy_temp_path {dir}/tmp;
  keepalive_requests 1000000;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-ID $request_id;
    }}
  }}
}}
"""


@contextlib.contextmanager
def nginx(
    binary: str, conf: str, directory: Path, name: str, port: int, cores: set[int] | None
) -> Iterator[subprocess.Popen[bytes]]:
    path = directory / f"{name}.conf"
    path.write_text(conf)
    process = subprocess.Popen(  # noqa: S603 - nginx from PATH, a config written here
        pinned(cores, [binary, "-p", str(directory), "-c", str(path)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield process
    finally:
        _stop(process)


@contextlib.contextmanager
def edge(
    origin: int,
    port: int,
    cores: set[int] | None,
    log_file: Path,
    connections: int,
    native_dir: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCALE_")}
    if native_dir is not None:
        env = native.edge_environment(native_dir, env)
    env |= {
        "REELSCALE_EDGE_UPSTREAMS": f"default=http://127.0.0.1:{origin}",
        "REELSCALE_EDGE_PORT": str(port),
        # Every part runs (classifier, limiter, rate limiter), sized so that the bench's
        # own load, one address at a fixed concurrency, is never refused: refusals are
        # cheap and would flatter the rate.
        "REELSCALE_EDGE_ADDRESS_RATE_PER_S": "1000000000",
        "REELSCALE_EDGE_ADDRESS_BURST": "1000000000",
        "REELSCALE_EDGE_LIMIT_MIN": str(2 * connections),
        "REELSCALE_EDGE_LIMIT_INITIAL": str(2 * connections),
        "REELSCALE_LOG_LEVEL": "WARNING",
        # The edge reads the platform secret at start (it signs identity headers): keep
        # the one it generates in the bench's directory, not the user's data dir.
        "REELSCALE_DATA_DIR": str(log_file.parent),
        "PYTHONUNBUFFERED": "1",
    }
    with log_file.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - this interpreter running reelscale itself
            pinned(cores, [sys.executable, "-m", "reelscale", "serve", "--roles", "edge"]),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        health.raise_for_status()
        # The origin answers 200 to any path too: make sure this is the edge talking.
        if health.headers.get("content-type") != "application/json" or health.json() != {
            "status": "ok"
        }:
            raise RuntimeError(f"port {port} is not the edge's: {health.text[:80]!r}")
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(
    wrk: str,
    url: str,
    process: subprocess.Popen[bytes] | None,
    *,
    seconds: float,
    warmup_s: float,
    connections: int,
    cores: set[int] | None,
) -> dict[str, Any]:
    if warmup_s > 0:
        run_wrk(wrk, url, seconds=warmup_s, connections=connections, cores=cores)
    before = process_tree_cpu_s(process.pid) if process else 0.0
    result = run_wrk(wrk, url, seconds=seconds, connections=connections, cores=cores)
    cpu = (process_tree_cpu_s(process.pid) - before) / result.seconds if process else 0.0
    rps = result.ok_rps
    return {
        "rps": round(rps),
        "cpu_cores": round(cpu, 3),
        # CPU readings are in clock ticks: below a tenth of a core, do not extrapolate.
        "rps_per_core": round(rps / cpu) if cpu >= 0.1 else round(rps),
        "non_2xx": result.non_2xx,
        "socket_errors": result.errors,
    }


def run(
    *,
    seconds: float = 5.0,
    warmup_s: float = 1.0,
    connections: int = 32,
    body_bytes: int = 128,
    native_edge: bool = False,
    log: Log = print,
) -> dict[str, Any]:
    nginx_bin = ensure_tool("nginx", "nginx", log)
    wrk = ensure_tool("wrk", "wrk", log)
    # Built (or found in the cache) before anything is measured: compiling takes both cores.
    build = native.ensure_built(log=log) if native_edge else None
    split = split_cpus()
    if split is not None:
        proxy_cores: set[int] | None = {split[0]}
        load_cores: set[int] | None = set(split[1])
    else:
        proxy_cores = load_cores = None
        log("only one core available: nothing is pinned, so per-core figures are rough")
    body = "x" * body_bytes
    with tempfile.TemporaryDirectory(prefix="reelscale-bench-proxy-") as tmp:
        directory = Path(tmp)
        (directory / "tmp").mkdir()
        directory.chmod(0o755)
        (directory / "tmp").chmod(0o777)
        origin_port, nginx_port, edge_port, native_port = free_ports(4)
        options: dict[str, Any] = {
            "seconds": seconds,
            "warmup_s": warmup_s,
            "connections": connections,
            "cores": load_cores,
        }
        origin_conf = ORIGIN_CONF.format(dir=directory, port=origin_port, body=body)
        with nginx(nginx_bin, origin_conf, directory, "origin", origin_port, load_cores):
            log("direct: wrk -> origin")
            direct = measure(wrk, f"http://127.0.0.1:{origin_port}{BENCH_PATH}", None, **options)
            proxy_conf = NGINX_PROXY_CONF.format(dir=directory, port=nginx_port, origin=origin_port)
            with nginx(nginx_bin, proxy_conf, directory, "proxy", nginx_port, proxy_cores) as proc:
                log("nginx: wrk -> nginx (1 worker) -> origin")
                via_nginx = measure(
                    wrk, f"http://127.0.0.1:{nginx_port}{BENCH_PATH}", proc, **options
                )
            with edge(
                origin_port, edge_port, proxy_cores, directory / "edge.log", connections
            ) as proc:
                log("edge: wrk -> reelscale edge (1 process) -> origin")
                via_edge = measure(
                    wrk, f"http://127.0.0.1:{edge_port}{BENCH_PATH}", proc, **options
                )
            if build is not None:
                with edge(
                    origin_port,
                    native_port,
                    proxy_cores,
                    directory / "edge-native.log",
                    connections,
                    native_dir=build.directory,
                ) as proc:
                    mapped = native.check_running(proc.pid, build.directory)
                    log(f"edge (native): runs compiled code ({', '.join(mapped)})")
                    via_native = measure(
                        wrk, f"http://127.0.0.1:{native_port}{BENCH_PATH}", proc, **options
                    )
    result: dict[str, Any] = {
        "edge_rps": via_edge["rps_per_core"],
        "direct_rps": direct["rps"],
        "nginx_rps": via_nginx["rps_per_core"],
        "edge_vs_nginx": _ratio(via_edge, via_nginx),
        "load_tool": "wrk",
        "per_core": "proxy pinned to one core; rate / CPU cores the proxy used",
        "edge": via_edge,
        "nginx": via_nginx,
        "direct": direct,
        "connections": connections,
        "seconds": seconds,
        "body_bytes": body_bytes,
        "proxy_core": sorted(proxy_cores) if proxy_cores else None,
        "load_cores": sorted(load_cores) if load_cores else None,
    }
    if build is not None:
        result |= {
            "edge_native_rps": via_native["rps_per_core"],
            "edge_native_vs_nginx": _ratio(via_native, via_nginx),
            "edge_native": via_native,
            "native": {
                "compiled_modules": list(build.modules),
                # From the edge's memory map: mypyc's library and the modules' own shims.
                "mapped_in_edge": mapped,
                "build_key": build.key,
                "built_now": build.built_now,
                "build_s": build.build_s,
            },
        }
    return result


def _ratio(proxy: dict[str, Any], via_nginx: dict[str, Any]) -> float:
    nginx_rate = via_nginx["rps_per_core"]
    return round(proxy["rps_per_core"] / nginx_rate, 3) if nginx_rate else 0.0


# --------------------------------------------------------------------------- in process
# The origin's answer as nginx sends it. Its head is the same every time, as nginx's is but
# for the Date line once a second, so the proxy's table of rewritten heads answers it.
_BENCH_BODY = b"x" * 128
BENCH_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 21 Nov 2026 13:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 128\r\nConnection: keep-alive\r\n\r\n"
) + _BENCH_BODY


class _CollectingTransport:
    """Just enough of a transport for the proxy: writes are kept, then dropped in bulk."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.written: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


def in_process(*, requests: int = 20_000, repeats: int = 5, headers: int = 0) -> dict[str, Any]:
    """The proxy's Python time per bench request, best of `repeats` runs of `requests`.

    One client connection and one pooled upstream connection, both on collecting
    transports; each request is the bench's GET (plus `headers` extra header lines) fed
    to the client side and the origin's 128-byte answer fed to the upstream side. Every
    part runs as in `reelscale serve --roles edge`: token checks (an open route), the
    classifier, the limiter, rate limits, routing, balancing, both head rewrites, metrics."""
    from prometheus_client import CollectorRegistry

    from reelscale.edge.proxy.auth import EdgeTrust
    from reelscale.edge.proxy.config import EdgeSettings
    from reelscale.edge.proxy.downstream import ClientConnection
    from reelscale.edge.proxy.main import loop_factory
    from reelscale.edge.proxy.server import ProxyServer
    from reelscale.edge.proxy.upstream import UpstreamConnection

    async def measure() -> dict[str, Any]:
        settings = EdgeSettings(
            upstreams="default=http://127.0.0.1:9",
            address_rate_per_s=1e9,
            address_burst=1e9,
            limit_min=64,
            limit_initial=64,
        )
        trust = EdgeTrust(secret=lambda: b"bench" * 8, issuer="bench", audience="bench")
        proxy = ProxyServer(settings, registry=CollectorRegistry(), trust=trust).proxy
        client = ClientConnection(proxy)
        downstream = _CollectingTransport(("127.0.0.1", 40000))
        client.connection_made(downstream)  # type: ignore[arg-type]
        upstream = UpstreamConnection(proxy.connections, proxy.pools["default"].instances[0])
        origin = _CollectingTransport(("127.0.0.1", 9))
        upstream.connection_made(origin)  # type: ignore[arg-type]
        proxy.connections.put_idle(upstream)
        extra = b"".join(b"X-Extra-%d: value %d\r\n" % (i, i) for i in range(headers))
        request = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (BENCH_PATH.encode(), extra)
        feed_request, feed_response = client.data_received, upstream.data_received
        for _ in range(1000):  # warm the caches and the adaptive limit
            feed_request(request)
            feed_response(BENCH_RESPONSE)
        if not downstream.written[-1].startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the proxy did not answer 200: {downstream.written[-1][:80]!r}")
        best = float("inf")
        for _ in range(repeats):
            downstream.written.clear()
            origin.written.clear()
            started = time.perf_counter()
            for _ in range(requests):
                feed_request(request)
                feed_response(BENCH_RESPONSE)
            best = min(best, (time.perf_counter() - started) / requests)
            if len(downstream.written) != requests:
                raise RuntimeError("a request was not answered")
        return {"python_us_per_request": round(best * 1e6, 2), "extra_headers": headers}

    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # uvloop, as the edge runs
        return runner.run(measure())


if __name__ == "__main__":
    import orjson

    print(orjson.dumps(in_process(headers=int(sys.argv[1]) if len(sys.argv) > 1 else 0)).decode())
