"""Serving media files under signed paths, for deployments without nginx in front.

The route checks the path's signature and expiry, then serves the file from the blob
store: with sendfile and Range support when the store is a local directory, streamed
otherwise. With nginx in front (deploy/nginx) the same check happens there and these
requests never reach Python.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from reelscale.core.errors import Forbidden, NotFound
from reelscale.playback.signing import InvalidSignature, verify

router = APIRouter(tags=["playback"])

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
}
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_HEX_ID = re.compile(r"^[0-9a-f]{32}$")


class MediaFiles(Protocol):
    """The part of a blob store delivery needs (media's BlobStore satisfies it)."""

    def local_path(self, key: str) -> object: ...

    async def size(self, key: str) -> int: ...

    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...


@router.get(
    "/media/s/{session_id}/{expires}/{sig}/{asset_id}/{file:path}",
    summary="A media file under a signed path (playlists, segments, poster, thumbnails)",
    responses={403: {"description": "Tampered, malformed or expired signature"}},
)
async def media_file(
    session_id: str, expires: str, sig: str, asset_id: str, file: str, request: Request
) -> Response:
    runtime = request.app.state.playback
    try:
        signed = verify(
            runtime.media_key,
            session_id=session_id,
            expires=expires,
            sig=sig,
            asset_id=asset_id,
            file=file,
            now=runtime.platform.clock.now().timestamp(),
        )
    except InvalidSignature as exc:
        raise Forbidden(str(exc)) from None
    suffix = "." + signed.file.rsplit(".", 1)[-1] if "." in signed.file else ""
    media_type = CONTENT_TYPES.get(suffix)
    if media_type is None:
        raise NotFound("no such media file")
    if not _HEX_ID.match(signed.asset_id):
        raise Forbidden("malformed media URL")
    key = f"assets/{signed.asset_id}/{signed.file}"
    files: MediaFiles = runtime.files
    # Segments never change once published; playlists may gain rungs while transcoding.
    cache = "private, max-age=3600" if suffix in (".m4s", ".mp4", ".jpg") else "private, no-cache"
    local = files.local_path(key)
    if local is not None:
        path = Path(str(local))
        if not await asyncio.to_thread(path.is_file):
            raise NotFound("no such media file")
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": cache})
    size = await files.size(key)
    start, end = 0, size - 1
    status = 200
    match = _RANGE.match(request.headers.get("range", ""))
    if match:
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        if start > end:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
    headers = {
        "Cache-Control": cache,
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
    }
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        files.stream(key, start, end), status_code=status, media_type=media_type, headers=headers
    )
