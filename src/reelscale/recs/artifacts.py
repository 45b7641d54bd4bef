"""Versioned model artifacts on disk, and the pointer to the current one.

    <directory>/<version>.model    one built RecsModel each, never rewritten
    <directory>/CURRENT            the version to serve, as text

An artifact is written to a hidden temporary file, fsynced, then hard-linked to its final
name (which fails if another writer took that version, so versions are never reused), then
the pointer is replaced by the same write-fsync-rename and the directory fsynced. A crash at
any moment leaves either the old pointer or the new one, and the pointer only ever names a
complete file. A file lock serialises writers on one host (the server's own schedule and a
`reelscale recs train` run), so the pointer only moves forward.

Reading checks everything before trusting anything: the magic, the header, the payload's
length and SHA-256, then unpickles with an allow-list of classes (the model's own dataclasses,
numpy arrays, datetimes), and checks the version inside matches. Any
failure is an `ArtifactError` naming the file and the reason; the caller keeps the model it
has. Pickle is used because the model is a graph of frozen dataclasses and arrays that
pickle writes and reads fastest; the allow-list means a tampered file cannot name arbitrary
callables, and `data_dir` is as trusted as the secret key kept beside it anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import json
import logging
import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reelscale.recs.snapshot import RecsModel

log = logging.getLogger("reelscale.recs")

MAGIC = b"RSRECS01"
FORMAT = 1
POINTER = "CURRENT"
KEEP = 5  # artifacts kept besides the current one, for a quick manual rollback
_NAME = re.compile(r"^(\d{1,18})\.model$")
_MAX_HEADER = 64 * 1024

_ALLOWED = {
    ("builtins", name)
    for name in ("frozenset", "set", "tuple", "list", "dict", "float", "int", "str", "slice")
} | {
    ("datetime", "datetime"),
    ("datetime", "timezone"),
    ("datetime", "timedelta"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "float32"),
    ("numpy", "float64"),
    ("numpy", "int64"),
    ("numpy", "bool_"),
}
_ALLOWED_MODULES = ("reelscale.recs.snapshot", "reelscale.recs.contextrank")


def default_directory(data_dir: Path) -> Path:
    """Where the server and `reelscale recs train` keep artifacts unless told otherwise."""
    return data_dir / "recs" / "models"


class ArtifactError(Exception):
    """An artifact or the pointer cannot be used; the message says which and why."""


class ModelStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def current_version(self) -> int | None:
        """The version the pointer names, None when there is none yet."""
        try:
            text = (self.directory / POINTER).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{self.directory / POINTER}: unreadable ({exc})") from exc
        if not text.isdigit() or len(text) > 18:
            raise ArtifactError(f"{self.directory / POINTER}: not a version number: {text!r}")
        return int(text)

    def versions(self) -> list[int]:
        """Every complete artifact's version, ascending."""
        if not self.directory.is_dir():
            return []
        found = (_NAME.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def path(self, version: int) -> Path:
        return self.directory / f"{version}.model"

    def load_current(self) -> RecsModel | None:
        version = self.current_version()
        return None if version is None else self.load(version)

    def load(self, version: int) -> RecsModel:
        path = self.path(version)
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{path}: unreadable ({exc})") from exc
        model = decode(blob, where=str(path))
        if model.version != version:
            raise ArtifactError(f"{path}: holds version {model.version}, not {version}")
        return model

    def publish(self, model: RecsModel) -> RecsModel:
        """Write `model` as the next free version and point CURRENT at it. Returns the model
        as written (its version may have been raised past what others already wrote)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            version = max([model.version, *(v + 1 for v in self.versions())])
            while True:
                model = dataclasses.replace(model, version=version)
                if self._write_new(model):
                    break
                version += 1  # another host sharing the directory took it
            current = self.current_version_or_none()
            if current is None or current < version:
                _write_atomically(self.directory / POINTER, f"{version}\n".encode("ascii"))
            self._prune(pointer=max(version, current or version))
        log.info(
            "recs artifact written", extra={"version": version, "path": str(self.path(version))}
        )
        return model

    def current_version_or_none(self) -> int | None:
        try:
            return self.current_version()
        except ArtifactError:
            return None  # a damaged pointer is replaced by the next publish

    def _write_new(self, model: RecsModel) -> bool:
        final = self.path(model.version)
        temporary = self.directory / f".{model.version}.{os.getpid()}.tmp"
        try:
            _write_file(temporary, encode(model))
            try:
                os.link(temporary, final)
            except FileExistsError:
                return False
            _fsync_directory(self.directory)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()

    def _prune(self, pointer: int) -> None:
        """Delete all but the newest KEEP + 1 artifacts, never the one the pointer names."""
        doomed = self.versions()[: -(KEEP + 1)]
        for version in (v for v in doomed if v != pointer):
            with contextlib.suppress(FileNotFoundError):
                self.path(version).unlink()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.directory / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def encode(model: RecsModel) -> bytes:
    payload = pickle.dumps(model, protocol=5)
    header = json.dumps(
        {
            "format": FORMAT,
            "version": model.version,
            "algorithm": model.algorithm,
            "trained_at": model.trained_at.isoformat(),
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        },
        sort_keys=True,
    ).encode()
    return MAGIC + len(header).to_bytes(4, "big") + header + payload


def decode(blob: bytes, *, where: str = "artifact") -> RecsModel:
    if not blob.startswith(MAGIC):
        raise ArtifactError(f"{where}: not a recs model artifact")
    start = len(MAGIC) + 4
    length = int.from_bytes(blob[len(MAGIC) : start], "big")
    if length > _MAX_HEADER or len(blob) < start + length:
        raise ArtifactError(f"{where}: truncated header")
    try:
        header = json.loads(blob[start : start + length])
        size, digest = int(header["size"]), str(header["sha256"])
        fmt = header["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{where}: unreadable header ({exc})") from exc
    if fmt != FORMAT:
        raise ArtifactError(f"{where}: format {fmt}, this version reads {FORMAT}")
    payload = blob[start + length :]
    if len(payload) != size:
        raise ArtifactError(f"{where}: truncated: {len(payload)} of {size} bytes")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ArtifactError(f"{where}: checksum mismatch")
    try:
        model = _Unpickler(io.BytesIO(payload)).load()
    except Exception as exc:  # any failure to rebuild the graph is a refusal, not a crash
        raise ArtifactError(f"{where}: cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(model, RecsModel):
        raise ArtifactError(f"{where}: holds a {type(model).__name__}, not a RecsModel")
    return model


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module in _ALLOWED_MODULES:
            found = super().find_class(module, name)
            if isinstance(found, type) and dataclasses.is_dataclass(found):
                return found  # the model's own records, never a function
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a model artifact")


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_file(temporary, data)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
