"""Where media bytes live: a local directory (embedded default) or S3-compatible storage.

Keys are '/'-separated relative paths ("assets/<id>/720p/seg_00001.m4s"). Writes are
atomic: a reader never sees half a file, and a crash leaves either the old state or the
new one.

Implementations: `blobs_local.LocalBlobStore`, `blobs_s3.S3BlobStore`; `blob_url` picks
one from REELSCALE_BLOB_URL. Every store keeps the same rules, so callers never branch:

- keys are checked by `check_key` (hostile keys raise BadRequest before any I/O);
- prefixes are plain string prefixes, as in S3: "assets/a" also matches "assets/ab/x";
- `stream` clamps `end` to the last byte and yields nothing when `start` is past it;
- a missing object raises NotFound (from `stream`, on the first iteration).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from reelscale.core.errors import BadRequest

MAX_KEY_LENGTH = 1024  # S3's limit, so a key that works locally also works on S3
CHUNK_SIZE = 256 * 1024


def check_key(key: str) -> str:
    """`key` if it is a safe relative path; raises BadRequest otherwise.

    Segments starting with "." are refused as well as "." and "..": the local store keeps
    its temporary files under such names, and nginx refuses to serve them.
    """
    if not key:
        raise BadRequest("blob key must be a non-empty string")
    if len(key.encode()) > MAX_KEY_LENGTH:
        raise BadRequest(f"blob key is longer than {MAX_KEY_LENGTH} bytes")
    if key.startswith("/") or "\\" in key:
        raise BadRequest("blob key must be a relative '/'-separated path")
    if any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in key):
        raise BadRequest("blob key must not contain control characters")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise BadRequest("blob key has an empty, '.', '..' or hidden path segment")
    return key


def check_prefix(prefix: str) -> str:
    """`prefix` if it is "" or a safe key with an optional trailing '/'."""
    if prefix == "":
        return prefix
    check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise BadRequest(f"invalid byte range {start}-{'' if end is None else end}")


class BlobStore(abc.ABC):
    """The contract every store keeps (tests/media/test_blob_contract.py)."""

    @abc.abstractmethod
    async def put_file(self, key: str, source: Path) -> None:
        """Copy a file in, atomically; the source is left as it was (see `move_file`)."""

    async def move_file(self, key: str, source: Path) -> None:
        """Put a file in and remove the source: a rename when the store is on the same disk."""
        await self.put_file(key, source)
        await asyncio.to_thread(source.unlink)

    @abc.abstractmethod
    async def put_bytes(self, key: str, data: bytes) -> None:
        """Write small content atomically (playlists, manifests)."""

    @abc.abstractmethod
    async def get_bytes(self, key: str) -> bytes:
        """The whole object; raises reelscale.core.errors.NotFound if absent."""

    @abc.abstractmethod
    async def size(self, key: str) -> int:
        """Bytes in the object; raises NotFound if absent."""

    @abc.abstractmethod
    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end] (inclusive end, HTTP Range style), in chunks."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under prefix; returns how many. An empty prefix is refused."""

    @abc.abstractmethod
    async def list_prefix(self, prefix: str) -> list[str]:
        """Keys under prefix, sorted."""

    def local_path(self, key: str) -> Path | None:
        """The file on local disk holding `key`, if the store is local (lets the platform
        and nginx serve it with sendfile); None otherwise."""
        return None

    async def start(self) -> None:  # noqa: B027 - optional hook, most stores need nothing
        """Check the store is usable, so a bad setting fails at startup, not on first play."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most stores need nothing
        """Release connections."""
