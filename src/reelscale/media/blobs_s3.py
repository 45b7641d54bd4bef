"""Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph RGW, moto), through boto3.

boto3 is synchronous; every call runs in a worker thread (`asyncio.to_thread`), sharing
one client, which boto3 documents as thread-safe. S3 writes are atomic by nature: an
object (multipart or not) becomes visible whole when its upload completes.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from reelscale.core.errors import BadRequest, NotFound, Overloaded, PlatformError
from reelscale.media.blobs import CHUNK_SIZE, BlobStore, check_key, check_prefix, check_range

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

T = TypeVar("T")
MiB = 1024 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
# Types browsers and players need when objects are served straight from a bucket or CDN;
# Python's mimetypes table does not know the HLS ones.
_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt",
    ".webp": "image/webp",
}


class S3BlobStore(BlobStore):
    """Blobs as objects `prefix + key` in `bucket` (REELSCALE_BLOB_URL=s3://bucket/prefix)."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 8 * MiB,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        self.bucket = bucket
        self.prefix = check_key(prefix.strip("/")) + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.create_bucket = create_bucket
        self._bucket_ready = not create_bucket
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=4,
        )
        options: dict[str, Any] = {
            "retries": {"mode": "standard", "max_attempts": 3},
            # At least as many pooled connections as asyncio's default thread pool has
            # threads, so concurrent calls do not churn connections.
            "max_pool_connections": 32,
        }
        if endpoint_url:
            # Self-hosted S3 servers rarely have wildcard DNS for virtual-host buckets, and
            # many reject the CRC checksums boto3 sends by default since 1.36.
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        # A session of our own: creating clients from boto3's default session is not
        # thread-safe, and credentials None fall back to the standard AWS chain (env vars,
        # shared config, instance roles).
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(**options),
        )

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix}{where})"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            if not self._bucket_ready:
                await asyncio.to_thread(self._ensure_bucket)
                self._bucket_ready = True
            return await asyncio.to_thread(function, *args, **kwargs)
        except EndpointConnectionError as exc:
            raise Overloaded("object storage is unreachable", retry_after=5) from exc

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._ensure_bucket)
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise PlatformError(f"object storage {self!r} is unusable: {exc}") from exc
        self._bucket_ready = True

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _code(exc) not in _NOT_FOUND | {"NoSuchBucket"} or not self.create_bucket:
                raise PlatformError(f"bucket {self.bucket!r} is not usable: {exc}") from exc
        region = self._client.meta.region_name
        try:
            if region and region != "us-east-1":
                self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
            else:
                self._client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            # Another process created it between our check and our create.
            if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)

    # ------------------------------------------------------------------ writes

    async def put_bytes(self, key: str, data: bytes) -> None:
        await self._call(
            self._client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=_content_type(key),
        )

    async def put_file(self, key: str, source: Path) -> None:
        # upload_file switches to a multipart upload past the threshold, sending parts in
        # parallel and retrying them one by one; the object appears only once complete.
        await self._call(
            self._client.upload_file,
            str(source),
            self.bucket,
            self._key(key),
            ExtraArgs={"ContentType": _content_type(key)},
            Config=self._transfer,
        )

    async def delete_prefix(self, prefix: str) -> int:
        if not check_prefix(prefix):
            raise BadRequest("refusing to delete every blob: the prefix is empty")
        keys = await self._list_full(self.prefix + prefix)
        deleted = 0
        for batch_start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000
            batch = keys[batch_start : batch_start + 1000]
            response = await self._call(
                self._client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise PlatformError(
                    f"could not delete {len(errors)} objects, e.g. {first.get('Key')!r}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )
            deleted += len(batch)
        return deleted

    # ------------------------------------------------------------------ reads

    async def get_bytes(self, key: str) -> bytes:
        try:
            response = await self._call(
                self._client.get_object, Bucket=self.bucket, Key=self._key(key)
            )
        except ClientError as exc:
            raise _mapped(exc, key) from exc
        body = response["Body"]
        try:
            return await asyncio.to_thread(body.read)
        finally:
            body.close()

    async def _head(self, key: str) -> dict[str, Any]:
        try:
            return dict(
                await self._call(self._client.head_object, Bucket=self.bucket, Key=self._key(key))
            )
        except ClientError as exc:
            raise _mapped(exc, key) from exc

    async def size(self, key: str) -> int:
        return int((await self._head(key))["ContentLength"])

    async def exists(self, key: str) -> bool:
        try:
            await self._head(key)
        except NotFound:
            return False
        return True

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        check_range(start, end)
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = await self._call(self._client.get_object, **request)
        except ClientError as exc:
            if _code(exc) == "InvalidRange":  # start is past the last byte
                return
            raise _mapped(exc, key) from exc
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    async def list_prefix(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        keys = await self._list_full(self.prefix + prefix)
        return [k[len(self.prefix) :] for k in keys]

    async def _list_full(self, full_prefix: str) -> list[str]:
        def collect() -> list[str]:
            paginator = self._client.get_paginator("list_objects_v2")
            return [
                item["Key"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix)
                for item in page.get("Contents", [])
            ]

        return sorted(await self._call(collect))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _mapped(exc: ClientError, key: str) -> Exception:
    if _code(exc) in _NOT_FOUND:
        return NotFound(f"no blob {key!r}")
    return exc


def _content_type(key: str) -> str:
    suffix = Path(key).suffix.lower()
    guessed = _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0]
    return guessed or "application/octet-stream"
