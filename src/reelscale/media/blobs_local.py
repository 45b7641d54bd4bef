"""The embedded blob store: a directory on local disk.

Every write goes to a hidden temporary file in the target's own directory, is fsynced and
then renamed over the target (`os.replace` is atomic within one filesystem), and the
directory is fsynced so the rename itself survives a crash. A reader therefore sees the
old file or the new one, never a partial one; temporary names start with "." so they are
never valid keys, never listed, and never served by nginx.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from reelscale.core.errors import BadRequest, Conflict, NotFound
from reelscale.media.blobs import CHUNK_SIZE, BlobStore, check_key, check_prefix, check_range

TEMP_PREFIX = ".reelscale-tmp-"
_COPY_BUFFER = 1024 * 1024
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class LocalBlobStore(BlobStore):
    """Blobs as files under `root` (REELSCALE_BLOB_URL=file:///abs/path, or the default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def local_path(self, key: str) -> Path:
        """Where `key` lives (or would live) on disk."""
        return self._path(key)

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    # ------------------------------------------------------------------ writes

    async def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        await asyncio.to_thread(_write_atomic, target, lambda out: out.write(data))

    async def put_file(self, key: str, source: Path) -> None:
        target = self._path(key)

        def copy(out: BinaryIO) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, out, _COPY_BUFFER)

        await asyncio.to_thread(_require_file, source)
        await asyncio.to_thread(_write_atomic, target, copy)

    async def move_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        await asyncio.to_thread(_require_file, source)
        try:
            await asyncio.to_thread(_rename_atomic, source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Another filesystem: a rename is impossible, so copy atomically, then let go.
            await self.put_file(key, source)
            await asyncio.to_thread(source.unlink)

    async def delete_prefix(self, prefix: str) -> int:
        if not check_prefix(prefix):
            raise BadRequest("refusing to delete every blob: the prefix is empty")
        return await asyncio.to_thread(self._delete, prefix)

    def _delete(self, prefix: str) -> int:
        deleted = 0
        parents: set[Path] = set()
        for key in self._list(prefix):
            path = self._path(key)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                deleted += 1
                parents.add(path.parent)
        # Prune directories left empty, deepest first; one still in use stays (ENOTEMPTY).
        for directory in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            while directory != self.root and self.root in directory.parents:
                try:
                    directory.rmdir()
                except OSError:
                    break
                directory = directory.parent
        return deleted

    # ------------------------------------------------------------------ reads

    async def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except _MISSING:
            raise NotFound(f"no blob {key!r}") from None

    async def size(self, key: str) -> int:
        path = self._path(key)
        try:
            info = await asyncio.to_thread(path.stat)
        except _MISSING:
            raise NotFound(f"no blob {key!r}") from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound(f"no blob {key!r}")
        return info.st_size

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        check_range(start, end)
        path = self._path(key)
        try:
            # One open file for the whole stream: a concurrent overwrite replaces the
            # directory entry, not this inode, so the reader keeps a consistent version.
            handle = await asyncio.to_thread(path.open, "rb")
        except _MISSING:
            raise NotFound(f"no blob {key!r}") from None
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await asyncio.to_thread(handle.read, want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def list_prefix(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        return await asyncio.to_thread(self._list, prefix)

    def _list(self, prefix: str) -> list[str]:
        directory = prefix.rpartition("/")[0]
        base = self.root.joinpath(*directory.split("/")) if directory else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            here = "" if rel == "." else rel + "/"
            # Descend only where keys could still match the prefix (plain string match).
            dirnames[:] = [
                d
                for d in dirnames
                if not d.startswith(".")
                and ((here + d + "/").startswith(prefix) or prefix.startswith(here + d + "/"))
            ]
            keys.extend(
                here + name
                for name in filenames
                if not name.startswith(".") and (here + name).startswith(prefix)
            )
        return sorted(keys)


# ---------------------------------------------------------------------- disk work


def _require_file(source: Path) -> None:
    if not source.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such source file", str(source))


def _write_atomic(target: Path, write: Callable[[BinaryIO], object]) -> None:
    fd, temp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(exc, IsADirectoryError):
            raise Conflict(f"{target.name!r} is a directory of other blobs") from None
        raise
    _fsync_dir(target.parent)


def _rename_atomic(source: Path, target: Path) -> None:
    # The rename is only as durable as the data behind it: flush the source first.
    with source.open("rb") as handle:
        os.fsync(handle.fileno())
    _make_parent(target)
    try:
        os.replace(source, target)
    except FileNotFoundError:
        # delete_prefix pruned the directory between mkdir and rename: make it again.
        _make_parent(target)
        os.replace(source, target)
    _fsync_dir(target.parent)


def _create_temp(target: Path) -> tuple[int, Path]:
    # os.open with 0o666 (not mkstemp's 0o600) so the umask decides, as for any file we
    # write: nginx workers run as another user and must be able to read segments.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _attempt in range(3):
        _make_parent(target)
        temp = target.with_name(TEMP_PREFIX + secrets.token_hex(8))
        try:
            return os.open(temp, flags, 0o666), temp
        except FileNotFoundError:
            continue  # a concurrent delete_prefix removed the directory; make it again
    raise Conflict(f"could not create a file next to {target.name!r}")


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise Conflict(
            f"a blob already exists where {target.parent.name!r} is a directory"
        ) from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
