"""Helpers for media tests: generated clips, uploads over the API, waiting for jobs."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx

from reelscale.media.synthetic import ClipSpec, generate_clip
from tests.conftest import Harness
from tests.support import bearer

CLIP_CACHE = Path("/tmp") / "reelscale-test-clips"  # noqa: S108 - a cache of generated media


async def clip(
    look: str = "testcard", seconds: float = 10, width: int = 640, height: int = 360, fps: int = 24
) -> Path:
    """A generated clip, made once per spec and reused across tests."""
    spec = ClipSpec(look, seconds, width, height, fps)
    path = CLIP_CACHE / f"{look}-{seconds}-{width}x{height}-{fps}.mp4"
    if not path.exists():
        await generate_clip(spec, path)
    return path


async def upload(
    client: httpx.AsyncClient,
    token: str,
    title_id: str,
    path: Path,
    *,
    chunk: int = 256 * 1024,
    filename: str = "source.mp4",
) -> dict[str, Any]:
    data = path.read_bytes()
    created = await client.post(
        "/v1/media/uploads",
        json={"title_id": title_id, "filename": filename, "size": len(data)},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    upload_id = created.json()["id"]
    body: dict[str, Any] = created.json()
    for offset in range(0, len(data), chunk):
        response = await client.patch(
            f"/v1/media/uploads/{upload_id}",
            content=data[offset : offset + chunk],
            headers={
                **bearer(token),
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        body = response.json()
        if response.status_code != 200:
            return {"status": response.status_code, **body}
    return {"status": 200, **body}


async def wait_for_asset(
    h: Harness, token: str, title_id: str, *, state: str = "ready", timeout: float = 120
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        assets = (
            await h.client.get(f"/v1/media/titles/{title_id}/assets", headers=bearer(token))
        ).json()
        # "ready" is set as the job's last step; the job itself is marked done just after.
        settled = state != "ready" or (assets and assets[-1]["jobs"][-1]["state"] == "done")
        if assets and assets[-1]["state"] == state and settled:
            return dict(assets[-1])
        if assets and assets[-1]["state"] == "failed":
            raise AssertionError(f"transcode failed: {assets[-1]}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"asset not {state} in {timeout} s: {assets}")
        await asyncio.sleep(0.2)


async def new_title(h: Harness, token: str, name: str | None = None, rating: str = "PG") -> str:
    response = await h.client.post(
        "/v1/catalog/titles",
        json={
            "kind": "movie",
            "name": name or f"Clip {uuid.uuid4().hex[:6]}",
            "release_year": 2025,
            "maturity_rating": rating,
            "original_language": "en",
            "runtime_minutes": 1,
            "genres": ["Documentary"],
        },
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
