"""Media HTTP routes: resumable uploads for editors, job status, playable titles."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status

from reelscale.core.auth import requires
from reelscale.core.errors import NotFound, Unprocessable
from reelscale.core.identity import Principal, Scope
from reelscale.core.problems import STANDARD_RESPONSES
from reelscale.media import service
from reelscale.media.runtime import CHUNK_MAX_BYTES, SOURCE, MediaRuntime
from reelscale.media.schemas import AssetOut, JobOut, PlayableOut, UploadIn, UploadOut

router = APIRouter(prefix="/v1/media", tags=["media"])
PROBLEMS = {**STANDARD_RESPONSES, 413: {"description": "Chunk too large"}}
CHUNK_TYPE = "application/offset+octet-stream"

editor = requires(Scope.MEDIA_WRITE)
reader = requires(Scope.CATALOG_READ)


def _runtime(request: Request) -> MediaRuntime:
    runtime: MediaRuntime = request.app.state.media
    return runtime


def _out(upload: object) -> UploadOut:
    out = UploadOut.model_validate(upload)
    out.chunk_max_bytes = CHUNK_MAX_BYTES
    return out


@router.post(
    "/uploads", status_code=status.HTTP_201_CREATED, response_model=UploadOut, responses=PROBLEMS
)
async def create_upload(
    data: UploadIn,
    response: Response,
    principal: Principal = Depends(editor),
    runtime: MediaRuntime = Depends(_runtime),
) -> UploadOut:
    """Start a resumable upload of a source video for a title.

    Send the bytes with `PATCH /v1/media/uploads/{id}` in chunks of at most
    `chunk_max_bytes`, each with the `Upload-Offset` it starts at."""
    async with runtime.platform.db.transaction() as db_session:
        upload = await service.create_upload(
            db_session=db_session,
            data=data,
            created_by=principal.subject,
            now=runtime.platform.clock.now(),
        )
        out = _out(upload)
    response.headers["Location"] = f"/v1/media/uploads/{out.id}"
    response.headers["Upload-Offset"] = "0"
    return out


@router.get("/uploads/{upload_id}", response_model=UploadOut, responses=PROBLEMS)
async def get_upload(
    upload_id: uuid.UUID,
    response: Response,
    _: Principal = Depends(editor),
    runtime: MediaRuntime = Depends(_runtime),
) -> UploadOut:
    """Where an upload stands: the offset to resume from, or its asset once received."""
    async with runtime.platform.db.session() as db_session:
        out = _out(await service.get_upload(db_session=db_session, upload_id=upload_id))
    response.headers["Upload-Offset"] = str(out.received)
    return out


@router.patch("/uploads/{upload_id}", response_model=UploadOut, responses=PROBLEMS)
async def upload_chunk(
    upload_id: uuid.UUID,
    request: Request,
    response: Response,
    upload_offset: Annotated[int, Header(alias="Upload-Offset", ge=0)],
    content_type: Annotated[str, Header(alias="Content-Type")],
    _: Principal = Depends(editor),
    runtime: MediaRuntime = Depends(_runtime),
) -> UploadOut:
    """Append one chunk, streamed to disk. The last chunk triggers probing and transcoding;
    a file that is not a usable video is refused here with the reason (422)."""
    if content_type.split(";")[0].strip().lower() != CHUNK_TYPE:
        raise Unprocessable(f"send chunks as {CHUNK_TYPE}")
    platform = runtime.platform
    upload = await service.append_chunk(
        db=platform.db,
        upload_id=upload_id,
        offset=upload_offset,
        body=request.stream(),
        staging=runtime.staging,
        max_chunk=CHUNK_MAX_BYTES,
        now=platform.clock.now(),
    )
    if upload.received == upload.size:
        upload = await service.complete_upload(
            db=platform.db,
            blobs=runtime.blobs,
            upload_id=upload_id,
            staging=runtime.staging,
            now=platform.clock.now(),
        )
        runtime.job_queued()
        await platform.events.emit(
            source=SOURCE,
            type="media.asset.received",
            subject=str(upload.asset_id),
            data={"title_id": str(upload.title_id), "upload_id": str(upload.id)},
        )
    response.headers["Upload-Offset"] = str(upload.received)
    return _out(upload)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=PROBLEMS)
async def get_job(
    job_id: uuid.UUID, _: Principal = Depends(editor), runtime: MediaRuntime = Depends(_runtime)
) -> JobOut:
    """A transcode job's state, stage and progress (0 to 1)."""
    async with runtime.platform.db.session() as db_session:
        return JobOut.model_validate(await service.get_job(db_session=db_session, job_id=job_id))


@router.get("/titles/{title_id}/assets", response_model=list[AssetOut], responses=PROBLEMS)
async def title_assets(
    title_id: uuid.UUID, _: Principal = Depends(editor), runtime: MediaRuntime = Depends(_runtime)
) -> list[AssetOut]:
    """A title's source videos with their renditions and jobs."""
    async with runtime.platform.db.session() as db_session:
        return await service.list_assets(db_session=db_session, title_id=title_id)


@router.get("/titles/{title_id}/playable-asset", response_model=PlayableOut, responses=PROBLEMS)
async def playable_asset(
    title_id: uuid.UUID, _: Principal = Depends(reader), runtime: MediaRuntime = Depends(_runtime)
) -> PlayableOut:
    """The asset a title plays from; 404 while nothing is playable."""
    async with runtime.platform.db.session() as db_session:
        asset = await service.playable_asset(db_session=db_session, title_id=title_id)
    if asset is None:
        raise NotFound("nothing is playable for this title yet")
    return PlayableOut(title_id=asset.title_id, asset_id=asset.id, duration_s=asset.duration_s)


@router.get("/playable", response_model=list[PlayableOut], responses=PROBLEMS)
async def playable_titles(
    _: Principal = Depends(reader), runtime: MediaRuntime = Depends(_runtime)
) -> list[PlayableOut]:
    """Every title that can be played now."""
    async with runtime.platform.db.session() as db_session:
        assets = await service.playable_titles(db_session=db_session)
    return [
        PlayableOut(title_id=a.title_id, asset_id=a.id, duration_s=a.duration_s) for a in assets
    ]
