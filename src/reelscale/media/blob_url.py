"""Pick the blob store from REELSCALE_BLOB_URL.

    (unset)                                   LocalBlobStore(data_dir / "media")
    file:///srv/reelscale/media               LocalBlobStore at that absolute path
    s3://bucket[/prefix][?endpoint=http://127.0.0.1:9000&region=us-east-1
                         &create_bucket=true&access_key=...&secret_key=...]
                                              S3BlobStore

S3 credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, shared config files, instance roles) unless the URL carries
access_key and secret_key; the environment is preferred, since URLs end up in logs.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from reelscale.media.blobs import BlobStore
from reelscale.media.blobs_local import LocalBlobStore

_S3_PARAMS = {"endpoint", "region", "access_key", "secret_key", "create_bucket"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class BlobURLError(ValueError):
    """REELSCALE_BLOB_URL cannot be understood; the message says why and what would work."""


def blob_store_from_url(url: str | None, data_dir: Path) -> BlobStore:
    """The store REELSCALE_BLOB_URL names; the embedded directory when it is unset."""
    if url is None or not url.strip():
        return LocalBlobStore(data_dir / "media")
    parts = urlsplit(url.strip())
    if parts.scheme == "file":
        return _local(parts.netloc, parts.path, parts.query, parts.fragment)
    if parts.scheme == "s3":
        return _s3(parts.netloc, parts.path, parts.query, parts.fragment)
    raise BlobURLError(
        f"unsupported blob URL scheme {parts.scheme!r} in REELSCALE_BLOB_URL: use "
        "file:///absolute/path or s3://bucket/prefix?endpoint=...&region=..."
    )


def _local(netloc: str, path: str, query: str, fragment: str) -> LocalBlobStore:
    if netloc not in ("", "localhost"):
        raise BlobURLError(
            f"file blob URLs name a local path (file:///abs/path), not host {netloc!r}"
        )
    if query or fragment:
        raise BlobURLError("file blob URLs take no query string or fragment")
    directory = unquote(path)
    if not directory.startswith("/") or directory == "/":
        raise BlobURLError("file blob URLs need an absolute directory: file:///abs/path")
    if "\x00" in directory or ".." in directory.split("/"):
        raise BlobURLError("file blob URLs must not contain NUL or '..'")
    return LocalBlobStore(Path(directory))


def _s3(netloc: str, path: str, query: str, fragment: str) -> BlobStore:
    # Imported here so the embedded default works without boto3 installed.
    from reelscale.media.blobs_s3 import S3BlobStore

    if "@" in netloc:
        raise BlobURLError(
            "put S3 credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the "
            "access_key/secret_key query parameters, not before the bucket name"
        )
    if not _BUCKET.match(netloc) or ".." in netloc:
        raise BlobURLError(
            f"invalid S3 bucket name {netloc!r} in REELSCALE_BLOB_URL (3-63 characters: "
            "lowercase letters, digits, '.' and '-'): s3://bucket/prefix"
        )
    if fragment:
        raise BlobURLError("S3 blob URLs take no fragment")
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise BlobURLError(f"cannot parse the query string of the S3 blob URL: {exc}") from None
    unknown = set(params) - _S3_PARAMS
    if unknown:
        raise BlobURLError(
            f"unknown S3 blob URL parameter(s) {sorted(unknown)}; known: {sorted(_S3_PARAMS)}"
        )
    repeated = [name for name, values in params.items() if len(values) > 1]
    if repeated:
        raise BlobURLError(f"S3 blob URL parameter(s) given twice: {sorted(repeated)}")
    one = {name: values[0] for name, values in params.items()}

    endpoint = one.get("endpoint") or None
    if endpoint is not None:
        endpoint_parts = urlsplit(endpoint)
        if endpoint_parts.scheme not in ("http", "https") or not endpoint_parts.netloc:
            raise BlobURLError(f"the S3 endpoint must be an http(s) URL, not {endpoint!r}")
    create = one.get("create_bucket", "false").lower()
    if create not in _TRUE | _FALSE:
        raise BlobURLError(f"create_bucket must be true or false, not {create!r}")
    access_key = one.get("access_key") or None
    secret_key = one.get("secret_key") or None
    if (access_key is None) != (secret_key is None):
        raise BlobURLError("give both access_key and secret_key in the S3 blob URL, or neither")
    prefix = unquote(path).strip("/")
    try:
        return S3BlobStore(
            netloc,
            prefix=prefix,
            endpoint_url=endpoint,
            region=one.get("region") or None,
            access_key=access_key,
            secret_key=secret_key,
            create_bucket=create in _TRUE,
        )
    except Exception as exc:  # a bad prefix, or boto3 refusing a region or endpoint
        raise BlobURLError(f"cannot use S3 blob URL: {exc}") from None
