"""Liveness, readiness and metrics endpoints, present in every process."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reelscale.core.problems import problem

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every service has started and the database answers",
    responses={503: {"description": "Not ready"}},
)
async def readyz(request: Request) -> Response:
    platform = request.app.state.platform
    checks = {"services": platform.supervisor.ready, "database": await platform.db.ping()}
    if all(checks.values()):
        return JSONResponse({"status": "ready", "roles": sorted(platform.roles)})
    return problem(503, detail="not ready", checks=checks)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry = request.app.state.platform.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
