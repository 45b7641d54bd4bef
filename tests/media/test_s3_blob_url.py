"""REELSCALE_BLOB_URL: which store each URL selects, and clear refusals for the rest.

The stores these URLs build are exercised against real storage in test_blob_contract.py;
here only the choice and its configuration are checked (no server is needed).
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelscale.media.blob_url import BlobURLError, blob_store_from_url
from reelscale.media.blobs_local import LocalBlobStore
from reelscale.media.blobs_s3 import S3BlobStore


@pytest.mark.parametrize("url", [None, "", "  "])
def test_unset_is_the_embedded_directory(url: str | None, tmp_path: Path) -> None:
    store = blob_store_from_url(url, tmp_path)
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "media"


def test_file_url_is_a_local_directory(tmp_path: Path) -> None:
    store = blob_store_from_url("file:///srv/reel%20scale/media", tmp_path)
    assert isinstance(store, LocalBlobStore)
    assert store.root == Path("/srv/reel scale/media")
    assert isinstance(blob_store_from_url("file://localhost/srv/m", tmp_path), LocalBlobStore)


def test_s3_url_with_everything(tmp_path: Path) -> None:
    store = blob_store_from_url(
        "s3://reel-media/tenant/one/?endpoint=http://127.0.0.1:9000&region=eu-west-1"
        "&access_key=AKIDEXAMPLE&secret_key=wJalrXUtnFEMI&create_bucket=yes",
        tmp_path,
    )
    assert isinstance(store, S3BlobStore)
    assert store.bucket == "reel-media"
    assert store.prefix == "tenant/one/"
    assert store.endpoint_url == "http://127.0.0.1:9000"
    assert store.create_bucket is True
    assert store._client.meta.region_name == "eu-west-1"
    assert "wJalrXUtnFEMI" not in repr(store), "the secret must not leak into logs"


def test_s3_url_minimal(tmp_path: Path) -> None:
    store = blob_store_from_url("s3://reel-media", tmp_path)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == ("reel-media", "", None)
    assert store.create_bucket is False


@pytest.mark.asyncio
async def test_s3_credentials_and_region_come_from_the_aws_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    with recording_server() as (endpoint, authorizations):
        store = blob_store_from_url(f"s3://reel-media?endpoint={endpoint}", tmp_path)
        try:
            assert not await store.exists("assets/a/master.m3u8")
        finally:
            await store.aclose()
    # SigV4 names the access key and the region it signed for.
    assert "Credential=AKIDFROMENV/" in authorizations[0]
    assert "/us-west-2/s3/aws4_request" in authorizations[0]


@contextlib.contextmanager
def recording_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP endpoint that answers 404 to everything and keeps the Authorization headers."""
    authorizations: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            authorizations.append(self.headers.get("Authorization", ""))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", authorizations
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/media", "unsupported blob URL scheme 'ftp'"),
        ("/srv/media", "unsupported blob URL scheme ''"),
        ("file://otherhost/srv/media", "not host 'otherhost'"),
        ("file://media", "not host 'media'"),
        ("file:///", "absolute directory"),
        ("file:///srv/../etc", "'..'"),
        ("file:///srv/media?x=1", "no query string"),
        ("s3://", "invalid S3 bucket name ''"),
        ("s3://Bad_Bucket", "invalid S3 bucket name"),
        ("s3://ab", "invalid S3 bucket name"),
        ("s3://key:secret@bucket", "AWS_ACCESS_KEY_ID"),
        ("s3://bucket?endpoint=ftp://x", "http(s) URL"),
        ("s3://bucket?endpoint=127.0.0.1:9000", "http(s) URL"),
        ("s3://bucket?regoin=us-east-1", "unknown S3 blob URL parameter(s) ['regoin']"),
        ("s3://bucket?region=a&region=b", "given twice"),
        ("s3://bucket?create_bucket=maybe", "create_bucket must be true or false"),
        ("s3://bucket?access_key=only", "both access_key and secret_key"),
        ("s3://bucket/../up", "cannot use S3 blob URL"),
        ("s3://bucket/.hidden", "cannot use S3 blob URL"),
        ("s3://bucket#frag", "no fragment"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(BlobURLError) as caught:
        blob_store_from_url(url, tmp_path)
    assert message in str(caught.value)
