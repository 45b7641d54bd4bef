"""Serving the single-page UI and its assets (no CDN at run time)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")


def mount_web(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def index() -> FileResponse:
        # Every UI route is the same page; the client-side router draws the view.
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    for path in (
        "/",
        "/browse",
        "/title/{title_id}",
        "/watch/{title_id}",
        "/search",
        "/profiles",
        "/login",
        "/editor",
        "/ops",
    ):
        app.add_api_route(path, index, include_in_schema=False, methods=["GET"])

    async def docs_redirect() -> RedirectResponse:
        return RedirectResponse("/docs")

    app.add_api_route("/api", docs_redirect, include_in_schema=False, methods=["GET"])
