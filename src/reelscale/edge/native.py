"""The edge's hot path compiled with mypyc: an opt-in build beside the default install.

`reelscale edge build-native` (or `ensure_built()`) runs
`REELSCALE_NATIVE=1 python -m pip install --no-deps --no-build-isolation --target DIR .` on
a copy of the project's sources, so setup.py compiles NATIVE_MODULES, unchanged, into C
extensions. DIR then holds the whole reelscale package, those modules as `.so` files beside
their `.py`, and the edge runs from it as always with DIR first on the path:

    PYTHONPATH=DIR reelscale serve --roles edge

Dependencies come from the current environment, which must be the one that built DIR (the
extensions are for its Python). The default install is never touched: DIR is under the
user's cache, one per build key.

The key is a hash of every file of the package, not only the compiled ones: DIR holds a
copy of all of reelscale (the CLI, the proxy's server and configuration included), so a
build keyed on the compiled sources alone would run stale copies of the rest after an edit.
The build runs without isolation on purpose: mypy type-checks the modules against the
packages they import, with the pydantic plugin, and those are this environment's.

This module imports only the standard library: setup.py reads NATIVE_MODULES from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The one list of compiled modules (setup.py reads it from here with `ast`). Each compiles
# unchanged; the request path spends its Python time in them.
NATIVE_MODULES: tuple[str, ...] = (
    "reelscale.edge.proxy.downstream",
    "reelscale.edge.proxy.exchange",
    "reelscale.edge.proxy.upstream",
    "reelscale.edge.proxy.http1",
    "reelscale.edge.proxy.classify",
    "reelscale.edge.proxy.routing",
    "reelscale.edge.proxy.balancer",
    "reelscale.edge.proxy.metrics",
    "reelscale.edge.proxy.retry",
    "reelscale.edge.ratelimit",
    "reelscale.edge.limiter",
    "reelscale.edge.adaptive",
)
ENV_FLAG = "REELSCALE_NATIVE"
# pyproject.toml's `license = "..."` needs setuptools 77; without build isolation the
# environment's own setuptools reads it.
MIN_SETUPTOOLS = 77
_MARKER = ".reelscale-native"
_KEEP_CACHED = 3
_NOT_COPIED = (".pyc", ".so")
_EXT_SUFFIX = str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")

Log = Callable[[str], None]


class NativeBuildError(RuntimeError):
    """The native edge could not be built or does not load; the message says why."""


@dataclass(frozen=True)
class NativeBuild:
    directory: Path
    key: str
    modules: tuple[str, ...]
    built_now: bool  # False: the cache already held this key
    build_s: float


def project_root() -> Path:
    """The source checkout this reelscale runs from (an editable install's)."""
    root = Path(__file__).resolve().parents[3]
    if not all((root / name).exists() for name in ("setup.py", "pyproject.toml", "src")):
        raise NativeBuildError(
            "the native edge is built from a source checkout of reelscale, installed with "
            f"`pip install -e .`; this reelscale runs from {Path(__file__).parents[2]}"
        )
    return root


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reelscale" / "native-edge"


def _package_files(root: Path) -> list[Path]:
    """The package's files as a build copies them (no bytecode, no stray extensions)."""
    return [
        path
        for path in sorted((root / "src" / "reelscale").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in _NOT_COPIED
    ]


def build_key(root: Path) -> str:
    """A hash of what goes into the build: sources, build files, Python and mypy versions."""
    digest = hashlib.sha256()
    try:
        mypy_version = importlib.metadata.version("mypy")
    except importlib.metadata.PackageNotFoundError:
        mypy_version = "none"
    digest.update(f"{sys.implementation.cache_tag} {_EXT_SUFFIX} mypy {mypy_version}\n".encode())
    digest.update(repr(NATIVE_MODULES).encode())
    for path in [root / "setup.py", root / "pyproject.toml", *_package_files(root)]:
        digest.update(b"\0" + path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def check_toolchain() -> None:
    """Raise NativeBuildError naming what is missing: mypyc, setuptools, a C compiler, headers."""
    if importlib.util.find_spec("mypyc") is None:
        raise NativeBuildError(
            "mypyc is missing (it comes with mypy): install the dev tools with "
            "`pip install -e '.[dev]'`, or `pip install mypy`"
        )
    try:
        setuptools_version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        setuptools_version = "0"
    if int(setuptools_version.split(".")[0]) < MIN_SETUPTOOLS:
        raise NativeBuildError(
            f"the native build uses this environment's setuptools, {setuptools_version}; it "
            f"needs {MIN_SETUPTOOLS} or newer: `pip install 'setuptools>={MIN_SETUPTOOLS}'`"
        )
    compiler = str(sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        raise NativeBuildError(
            f"no C compiler ({compiler!r} not on PATH): install gcc (Debian: apt-get install gcc)"
        )
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.exists():
        raise NativeBuildError(
            f"Python's C headers are missing ({header}): install them "
            "(Debian: apt-get install python3-dev)"
        )


def _is_build(directory: Path, key: str | None = None) -> bool:
    marker = directory / _MARKER
    return marker.is_file() and (key is None or marker.read_text().strip() == key)


def ensure_built(*, into: Path | None = None, force: bool = False, log: Log = print) -> NativeBuild:
    """The native edge for the current sources: from the cache, or built now (about a minute)."""
    root = project_root()
    key = build_key(root)
    target = (into if into is not None else cache_root() / key).resolve()
    if not force and _is_build(target, key):
        verify(target)
        return NativeBuild(target, key, NATIVE_MODULES, built_now=False, build_s=0.0)
    if target.exists() and any(target.iterdir()) and not _is_build(target):
        raise NativeBuildError(f"{target} exists and is not a native edge build: choose another")
    check_toolchain()
    target.parent.mkdir(parents=True, exist_ok=True)
    log(
        f"compiling the edge hot path with mypyc ({len(NATIVE_MODULES)} modules), "
        "about a minute ..."
    )
    started = time.monotonic()
    # Staged beside the target, then renamed into place: a build that fails or is
    # interrupted never leaves a directory that looks complete.
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as tmp:
        stage = Path(tmp)
        source = stage / "source"
        _copy_sources(root, source)
        out = stage / "out"
        _pip_install(source, out, stage / "build.log", log)
        (out / _MARKER).write_text(key + "\n")
        verify(out)
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    elapsed = time.monotonic() - started
    log(f"built the native edge in {elapsed:.0f} s")
    if into is None:
        _prune(target.parent, keep=target)
    return NativeBuild(target, key, NATIVE_MODULES, built_now=True, build_s=round(elapsed, 1))


def _copy_sources(root: Path, source: Path) -> None:
    """What the build reads, without caches or stray build products of the working tree."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", *(f"*{s}" for s in _NOT_COPIED))
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(root / name, source / name)
    shutil.copytree(root / "src", source / "src", ignore=ignore)


def _pip_install(source: Path, out: Path, log_file: Path, log: Log) -> None:
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    # No index: nothing is downloaded, the build uses this environment's packages only.
    argv += ["--no-index", "--disable-pip-version-check", "--target", str(out), str(source)]
    env = {**os.environ, ENV_FLAG: "1"}
    started = time.monotonic()
    with log_file.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - this interpreter's pip, arguments built here
            argv, cwd=source, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        while True:
            try:
                process.wait(timeout=20)
                break
            except subprocess.TimeoutExpired:
                log(f"  still compiling ({time.monotonic() - started:.0f} s)")
    if process.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
        raise NativeBuildError(f"the mypyc build failed (pip exit {process.returncode}):\n{tail}")


def compiled_files(directory: Path) -> dict[str, Path]:
    """Each native module's extension in a build directory."""
    return {
        module: directory.joinpath(*module.split(".")).with_name(
            module.rsplit(".", 1)[1] + _EXT_SUFFIX
        )
        for module in NATIVE_MODULES
    }


def verify(directory: Path) -> None:
    """Every native module is in `directory` as an extension, and Python imports it as one."""
    missing = [m for m, path in compiled_files(directory).items() if not path.is_file()]
    if missing:
        raise NativeBuildError(f"{directory} lacks compiled modules: {', '.join(missing)}")
    # A fresh interpreter, as the edge would start: the import system, not a file listing,
    # decides what is loaded.
    probe = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    print(name, importlib.import_module(name).__file__)\n"
    )
    env = edge_environment(directory, dict(os.environ))
    result = subprocess.run(  # noqa: S603 - this interpreter, arguments built here
        [sys.executable, "-c", probe, *NATIVE_MODULES],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise NativeBuildError(f"the native edge does not import:\n{result.stderr[-2000:]}")
    loaded = {
        name: path for name, _, path in (ln.partition(" ") for ln in result.stdout.splitlines())
    }
    base = directory.resolve()
    wrong = [
        f"{name} from {path}"
        for name, path in loaded.items()
        if not (path.endswith(_EXT_SUFFIX) and Path(path).resolve().is_relative_to(base))
    ]
    if wrong or len(loaded) != len(NATIVE_MODULES):
        raise NativeBuildError(f"not the compiled modules of {directory}: {'; '.join(wrong)}")


def edge_environment(directory: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` for `reelscale serve --roles edge` running from a native build."""
    existing = env.get("PYTHONPATH")
    return env | {
        "PYTHONPATH": os.pathsep.join([str(directory), existing] if existing else [str(directory)])
    }


def mapped_in_process(pid: int, directory: Path) -> list[str]:
    """The extensions of a native build that a running process has mapped (Linux: from its
    memory map), named as modules: `reelscale.edge.proxy.downstream`, `<hash>__mypyc`."""
    base = str(directory.resolve()) + os.sep
    found: set[str] = set()
    with contextlib.suppress(FileNotFoundError):
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            fields = line.split(maxsplit=5)
            path = fields[5] if len(fields) == 6 else ""
            if path.startswith(base) and path.endswith(_EXT_SUFFIX):
                found.add(path[len(base) : -len(_EXT_SUFFIX)].replace(os.sep, "."))
    return sorted(found)


def check_running(pid: int, directory: Path) -> list[str]:
    """What a running edge mapped from a native build; NativeBuildError unless that includes
    the compiled code.

    mypyc puts the code of all the modules in one shared library (`<hash>__mypyc`). A
    module's own extension is a small shim, mapped when the import system loads it; a module
    first imported by another compiled module is started inside the library, without one.
    So the library is the proof that the process runs compiled code (it can only come from
    importing a compiled module, and Python prefers the extension to the `.py` beside it),
    and the shims are a partial list of the modules."""
    mapped = mapped_in_process(pid, directory)
    if not any(name.endswith("__mypyc") for name in mapped):
        raise NativeBuildError(
            f"process {pid} runs no compiled code from {directory} (mapped: {mapped or 'none'})"
        )
    return mapped


def compiled_here() -> list[str]:
    """The native modules this process has imported compiled (for a start-up log line)."""
    return sorted(
        name
        for name in NATIVE_MODULES
        if (module := sys.modules.get(name)) is not None
        and str(getattr(module, "__file__", "")).endswith(_EXT_SUFFIX)
    )


def _prune(cache: Path, *, keep: Path) -> None:
    """Keep the newest few builds: each is the whole package, and keys change with every edit."""
    builds = sorted(
        (p for p in cache.iterdir() if p != keep and _is_build(p)),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[_KEEP_CACHED - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
