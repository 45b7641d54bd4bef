"""One contract, every blob store: the local directory and S3 (against moto's real server).

Stores are built through `blob_store_from_url`, as the platform builds them from
REELSCALE_BLOB_URL. The S3 server is moto in server mode, started once per session as a
subprocess; outside CI the S3 cases skip when moto is missing, with CI=true they fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from reelscale.core.errors import BadRequest, NotFound, Overloaded, PlatformError
from reelscale.media.blob_url import blob_store_from_url
from reelscale.media.blobs import BlobStore
from reelscale.media.blobs_local import LocalBlobStore
from reelscale.media.blobs_s3 import S3BlobStore
from tests.e2e.server import free_port
from tests.support import s3_url

pytestmark = pytest.mark.asyncio

HOSTILE_KEYS = [
    "",
    "/etc/passwd",
    "..",
    ".",
    "../outside",
    "assets/../../outside",
    "assets/..",
    "assets/./x",
    "assets//x",
    "assets/",
    "assets\\..\\x",
    "assets/x\x00.m4s",
    "assets/x\n.m4s",
    "assets/.hidden",
    "assets/.reelscale-tmp-0123",
    "a" * 1025,
]
# Big enough to span several stream chunks, patterned so an off-by-one shows.
PATTERNED = bytes(range(251)) * 4000


@pytest_asyncio.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        url = f"file://{tmp_path / 'blobs'}"
    else:
        # One bucket for the session, a fresh prefix per test: also proves prefixes isolate.
        url = s3_url(request.getfixturevalue("s3_endpoint"), f"run/{uuid.uuid4().hex}")
    built = blob_store_from_url(url, tmp_path)
    await built.start()
    try:
        yield built
    finally:
        await built.aclose()


async def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.stream(key, start, end)])


# ---------------------------------------------------------------------- contract


async def test_bytes_roundtrip_and_overwrite(store: BlobStore) -> None:
    await store.put_bytes("assets/a1/master.m3u8", b"#EXTM3U\n")
    assert await store.get_bytes("assets/a1/master.m3u8") == b"#EXTM3U\n"
    await store.put_bytes("assets/a1/master.m3u8", b"#EXTM3U\n#v2\n")
    assert await store.get_bytes("assets/a1/master.m3u8") == b"#EXTM3U\n#v2\n"
    assert await store.size("assets/a1/master.m3u8") == 12


async def test_empty_object(store: BlobStore) -> None:
    await store.put_bytes("assets/a1/empty", b"")
    assert await store.exists("assets/a1/empty")
    assert await store.size("assets/a1/empty") == 0
    assert await store.get_bytes("assets/a1/empty") == b""
    assert await read_all(store, "assets/a1/empty") == b""


async def test_put_file_copies_and_move_file_consumes(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "seg.m4s"
    source.write_bytes(PATTERNED)
    await store.put_file("assets/a1/720p/seg_00001.m4s", source)
    assert source.read_bytes() == PATTERNED, "put_file must leave the source as it was"
    await store.move_file("assets/a1/720p/seg_00002.m4s", source)
    assert not source.exists()
    for name in ("seg_00001.m4s", "seg_00002.m4s"):
        assert await store.get_bytes(f"assets/a1/720p/{name}") == PATTERNED


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 0),  # first byte
        (0, 9),
        (1000, 300_000),  # middle, across chunk boundaries
        (len(PATTERNED) - 1, len(PATTERNED) - 1),  # last byte
        (len(PATTERNED) - 10, None),  # open-ended tail
        (0, None),  # whole
        (5, len(PATTERNED) + 100),  # end past the last byte is clamped
    ],
)
async def test_range_streaming(store: BlobStore, start: int, end: int | None) -> None:
    await store.put_bytes("assets/a1/seg.m4s", PATTERNED)
    expected = PATTERNED[start : None if end is None else end + 1]
    assert await read_all(store, "assets/a1/seg.m4s", start, end) == expected


async def test_range_past_the_end_yields_nothing(store: BlobStore) -> None:
    await store.put_bytes("assets/a1/seg.m4s", b"0123456789")
    assert await read_all(store, "assets/a1/seg.m4s", 10) == b""
    with pytest.raises(BadRequest):
        await read_all(store, "assets/a1/seg.m4s", 5, 4)
    with pytest.raises(BadRequest):
        await read_all(store, "assets/a1/seg.m4s", -1)


async def test_missing_objects_are_not_found(store: BlobStore) -> None:
    assert not await store.exists("assets/nope/x.m4s")
    with pytest.raises(NotFound):
        await store.get_bytes("assets/nope/x.m4s")
    with pytest.raises(NotFound):
        await store.size("assets/nope/x.m4s")
    with pytest.raises(NotFound):
        await read_all(store, "assets/nope/x.m4s")
    # A "directory" of other objects is not an object either.
    await store.put_bytes("assets/dir/x.m4s", b"x")
    assert not await store.exists("assets/dir")
    with pytest.raises(NotFound):
        await store.get_bytes("assets/dir")


async def test_list_and_delete_prefix(store: BlobStore) -> None:
    keys = [
        "assets/a/master.m3u8",
        "assets/a/720p/seg_00001.m4s",
        "assets/a/720p/seg_00002.m4s",
        "assets/ab/master.m3u8",
        "assets/b/master.m3u8",
    ]
    for key in reversed(keys):
        await store.put_bytes(key, key.encode())
    assert await store.list_prefix("assets/a/") == sorted(keys[:3])
    # Plain string prefixes, as in S3.
    assert await store.list_prefix("assets/a") == sorted(keys[:4])
    assert await store.list_prefix("assets/a/720p/seg_0000") == sorted(keys[1:3])
    assert await store.list_prefix("") == sorted(keys)
    assert await store.list_prefix("assets/zzz/") == []

    assert await store.delete_prefix("assets/a/") == 3
    assert await store.list_prefix("") == sorted(keys[3:])
    assert not await store.exists("assets/a/master.m3u8")
    assert await store.delete_prefix("assets/a/") == 0
    with pytest.raises(BadRequest):
        await store.delete_prefix("")
    # The emptied "directory" can be written again.
    await store.put_bytes("assets/a/master.m3u8", b"again")
    assert await store.get_bytes("assets/a/master.m3u8") == b"again"


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=repr)
async def test_hostile_keys_are_refused(store: BlobStore, key: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x")
    with pytest.raises(BadRequest):
        await store.put_bytes(key, b"x")
    with pytest.raises(BadRequest):
        await store.put_file(key, source)
    with pytest.raises(BadRequest):
        await store.get_bytes(key)
    with pytest.raises(BadRequest):
        await store.size(key)
    with pytest.raises(BadRequest):
        await store.exists(key)
    with pytest.raises(BadRequest):
        await read_all(store, key)
    if key not in ("", "assets/"):  # valid as prefixes, not as keys
        with pytest.raises(BadRequest):
            await store.list_prefix(key)
        with pytest.raises(BadRequest):
            await store.delete_prefix(key)
    assert await store.list_prefix("") == []


async def test_overwrite_is_atomic_for_concurrent_readers(store: BlobStore) -> None:
    old, new = b"o" * (2 * 1024 * 1024), b"n" * (2 * 1024 * 1024 + 7)
    await store.put_bytes("assets/a/seg.m4s", old)
    seen: set[bytes] = set()
    writing = True

    async def writer() -> None:
        nonlocal writing
        for turn in range(8):
            await store.put_bytes("assets/a/seg.m4s", new if turn % 2 == 0 else old)
        writing = False

    async def reader() -> None:
        while writing:
            seen.add(await store.get_bytes("assets/a/seg.m4s"))
            seen.add(await read_all(store, "assets/a/seg.m4s"))

    await asyncio.gather(writer(), reader(), reader())
    assert seen <= {old, new}, "a reader saw a partial object"


async def test_multipart_upload_of_a_large_file(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "source.mp4"
    data = os.urandom(20 * 1000 * 1000)
    source.write_bytes(data)
    await store.put_file("assets/big/source.mp4", source)
    assert await store.size("assets/big/source.mp4") == len(data)
    digest = hashlib.sha256()
    async for chunk in store.stream("assets/big/source.mp4"):
        digest.update(chunk)
    assert digest.digest() == hashlib.sha256(data).digest()
    if isinstance(store, S3BlobStore):
        head = await asyncio.to_thread(
            store._client.head_object,
            Bucket=store.bucket,
            Key=store.prefix + "assets/big/source.mp4",
        )
        assert head["ETag"].endswith('-3"'), "20 MB in 8 MiB parts is a 3-part upload"
        assert head["ContentType"] == "video/mp4"


async def test_local_path(store: BlobStore) -> None:
    await store.put_bytes("assets/a/poster.jpg", b"jpeg")
    path = store.local_path("assets/a/poster.jpg")
    if isinstance(store, LocalBlobStore):
        assert path is not None
        assert path.read_bytes() == b"jpeg"
        with pytest.raises(BadRequest):
            store.local_path("../x")
    else:
        assert path is None


# ---------------------------------------------------------------------- S3 only


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
async def test_s3_creates_the_bucket_only_when_told_to(s3_endpoint: str, region: str) -> None:
    bucket = f"rs-missing-{uuid.uuid4().hex[:12]}"
    plain = S3BlobStore(
        bucket, endpoint_url=s3_endpoint, region=region, access_key="k", secret_key="s"
    )
    creating = S3BlobStore(
        bucket,
        endpoint_url=s3_endpoint,
        region=region,
        access_key="k",
        secret_key="s",
        create_bucket=True,
    )
    try:
        with pytest.raises(PlatformError, match="is not usable"):
            await plain.start()
        # Lazily, on first use, without start().
        await creating.put_bytes("assets/a/master.m3u8", b"#EXTM3U\n")
        await plain.start()
        assert await plain.get_bytes("assets/a/master.m3u8") == b"#EXTM3U\n"
    finally:
        await plain.aclose()
        await creating.aclose()


async def test_s3_unreachable_is_a_503_not_a_crash() -> None:
    store = S3BlobStore(
        "reelscale-nowhere",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key="k",
        secret_key="s",
        create_bucket=True,
    )
    try:
        with pytest.raises(Overloaded) as caught:
            await store.get_bytes("assets/a/master.m3u8")
        assert caught.value.status == 503
        assert caught.value.retry_after
        with pytest.raises(PlatformError, match="unusable"):
            await store.start()
    finally:
        await store.aclose()


# ---------------------------------------------------------------------- local only


async def test_local_failed_write_keeps_old_content_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.put_bytes("assets/a/master.m3u8", b"old")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="simulated"):
        await store.put_bytes("assets/a/master.m3u8", b"new")
    monkeypatch.undo()
    assert await store.get_bytes("assets/a/master.m3u8") == b"old"
    assert sorted(p.name for p in (tmp_path / "blobs/assets/a").iterdir()) == ["master.m3u8"]


async def test_local_files_are_readable_by_other_users(tmp_path: Path) -> None:
    # nginx workers run as another user; temp files must not keep mkstemp's 0600.
    store = LocalBlobStore(tmp_path / "blobs")
    await store.put_bytes("assets/a/seg.m4s", b"x")
    mode = (tmp_path / "blobs/assets/a/seg.m4s").stat().st_mode & 0o777
    assert mode == 0o666 & ~current_umask()


def current_umask() -> int:
    # Read from /proc rather than os.umask(), which would change it for every thread.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    pytest.skip("no /proc/self/status to read the umask from")
    raise AssertionError("unreachable")
