"""The opt-in native edge: setup.py compiles nothing unless REELSCALE_NATIVE=1, and the
mypyc build (`reelscale edge build-native`) runs `serve --roles edge` on compiled modules.

The build test compiles for about a minute. Outside CI it skips, with the reason, when mypyc
or a C compiler is missing; with CI=true it fails, as does any failed build anywhere.
"""

from __future__ import annotations

import contextlib
import runpy
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelscale.edge import bench_proxy, native
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]


def _setup_namespace() -> dict[str, Any]:
    # Not as __main__: that would call setup().
    return runpy.run_path(str(ROOT / "setup.py"), run_name="reelscale_setup")


def test_without_the_variable_setup_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV_FLAG, raising=False)
    setup = _setup_namespace()
    assert setup["native_modules"]() == []
    assert setup["setup_arguments"]() == {}


def test_with_the_variable_setup_compiles_the_listed_modules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(native.ENV_FLAG, "1")
    modules = _setup_namespace()["native_modules"]()
    assert modules == list(native.NATIVE_MODULES)
    for module in modules:
        assert (ROOT / "src" / Path(*module.split("."))).with_suffix(".py").is_file()


def _fake_project(root: Path) -> None:
    (root / "src" / "reelscale" / "edge").mkdir(parents=True)
    (root / "setup.py").write_text("# setup\n")
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "src" / "reelscale" / "edge" / "server.py").write_text("SERVED = 1\n")


def test_the_build_key_follows_every_package_source_and_nothing_else(tmp_path: Path) -> None:
    _fake_project(tmp_path)
    key = native.build_key(tmp_path)
    assert native.build_key(tmp_path) == key
    cache = tmp_path / "src" / "reelscale" / "edge" / "__pycache__"
    cache.mkdir()
    (cache / "server.cpython-311.pyc").write_bytes(b"\0")
    assert native.build_key(tmp_path) == key
    # A module that is not compiled still changes the key: the build holds a copy of it.
    (tmp_path / "src" / "reelscale" / "edge" / "server.py").write_text("SERVED = 2\n")
    assert native.build_key(tmp_path) != key


def test_a_build_never_replaces_a_directory_that_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(native.NativeBuildError, match="is not a native edge build"):
        native.ensure_built(into=tmp_path, log=lambda _line: None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


class _Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"origin saw {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads no log
        pass


@contextlib.contextmanager
def _origin(port: int) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_native_build_serves_through_its_compiled_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        native.check_toolchain()
    except native.NativeBuildError as exc:
        if IN_CI:
            pytest.fail(f"{exc}; CI=true requires the native edge build")
        pytest.skip(f"{exc}; install it or run with CI=true to make this a failure")
    lines: list[str] = []
    build = native.ensure_built(into=tmp_path / "native", log=lines.append)
    assert build.built_now
    assert lines[0].startswith("compiling the edge hot path with mypyc")
    # The default install is untouched: this process still runs the pure-Python modules.
    assert native.compiled_here() == []
    origin_port, edge_port = bench_proxy.free_ports(2)
    with (
        _origin(origin_port),
        bench_proxy.edge(
            origin_port,
            edge_port,
            None,
            tmp_path / "edge.log",
            connections=8,
            native_dir=build.directory,
        ) as process,
    ):
        answer = httpx.get(f"http://127.0.0.1:{edge_port}{bench_proxy.BENCH_PATH}", timeout=10)
        mapped = native.check_running(process.pid, build.directory)
    assert answer.status_code == 200, answer.text
    assert answer.text == f"origin saw {bench_proxy.BENCH_PATH}"
    # The proxy enters the compiled code at downstream, which its server imports.
    assert "reelscale.edge.proxy.downstream" in mapped
    assert {name for name in mapped if not name.endswith("__mypyc")} <= set(native.NATIVE_MODULES)
    # A second call for the same sources finds the build current and does not compile
    # again (the key is pinned: someone may be editing the working tree meanwhile).
    monkeypatch.setattr(native, "build_key", lambda _root: build.key)
    again = native.ensure_built(into=tmp_path / "native", log=lines.append)
    assert (again.built_now, again.key) == (False, build.key)
