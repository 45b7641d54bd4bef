"""The whole media path on S3-compatible storage: upload, transcode, play, stream ranges."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.conftest import make_settings, started
from tests.media.media_support import clip, new_title, upload, wait_for_asset
from tests.support import bearer, editor_token, login, profile_token, s3_url, signup


async def test_play_from_s3(tmp_path: Path, s3_endpoint: str) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
        blob_url=s3_url(s3_endpoint, f"play/{uuid.uuid4().hex}"),
    )
    async with started(settings) as h:
        assert h.app.state.media.blobs.local_path("assets/x") is None  # really S3
        editor = await editor_token(h.client, h.app)
        title_id = await new_title(h, editor)
        result = await upload(
            h.client, editor, title_id, await clip(seconds=10, width=416, height=234)
        )
        assert result["status"] == 200
        await wait_for_asset(h, editor, title_id)
        await signup(h.client, "s3@example.com")
        account = (await login(h.client, "s3@example.com"))["access_token"]
        token = (await profile_token(h.client, account, "S3"))[1]
        play = (
            await h.client.post(
                "/v1/playback/sessions", json={"title_id": title_id}, headers=bearer(token)
            )
        ).json()
        manifest = await h.client.get(play["manifest_url"])
        assert manifest.status_code == 200
        assert "#EXT-X-STREAM-INF" in manifest.text
        rung = manifest.text.strip().splitlines()[-1].split("/")[0]
        init = await h.client.get(
            f"{play['media_prefix']}{rung}/init.mp4", headers={"Range": "bytes=4-11"}
        )
        assert init.status_code == 206
        assert len(init.content) == 8
        assert init.content[:4] == b"ftyp"  # bytes 4-11 of an MP4: the ftyp box and brand
        assert init.headers["content-range"].startswith("bytes 4-11/")
