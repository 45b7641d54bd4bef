"""Routes: a profile's home rows and More Like This, answered from the in-memory model.

The home page is ranked for the request's context: the hour and week part come from the
server's clock (UTC, as the model learnt them), the device from `?device=` (what the player
reports to playback, e.g. `web`, `tv`, `ios`) or else from the User-Agent header.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, StringConstraints

from reelscale.core.auth import requires
from reelscale.core.errors import Forbidden
from reelscale.core.identity import Principal, Scope
from reelscale.core.problems import STANDARD_RESPONSES
from reelscale.recs.context import (
    DEVICE_CLASSES,
    UNKNOWN_DEVICE,
    context_of,
    device_from_user_agent,
)
from reelscale.recs.rows import Row, Viewer
from reelscale.recs.serving import RecsService

router = APIRouter(prefix="/v1/recs", tags=["recommendations"])
reader = requires(Scope.CATALOG_READ)
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
DeviceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class CardOut(BaseModel):
    id: str
    name: str
    kind: str
    year: int | None
    maturity_level: int
    language: str
    genres: list[str]
    progress: float | None = None  # Continue Watching: the fraction watched


class RowOut(BaseModel):
    id: str
    title: str
    reason: str
    items: list[CardOut]


class ContextOut(BaseModel):
    """The context the page was ranked for."""

    hour_bucket: int  # 0-7: three-hour buckets of the UTC day
    weekend: bool
    device: str | None  # the device class, None when unknown


class HomeOut(BaseModel):
    profile_id: str
    model_version: int
    context: ContextOut
    rows: list[RowOut]


def _recs(request: Request) -> RecsService:
    recs: RecsService = request.app.state.recs
    return recs


def _row_out(row: Row) -> RowOut:
    progress: list[float | None] = list(row.progress) or [None] * len(row.items)
    return RowOut(
        id=row.id,
        title=row.title,
        reason=row.reason,
        items=[
            CardOut(
                id=card.id,
                name=card.name,
                kind=card.kind,
                year=card.year,
                maturity_level=card.maturity_level,
                language=card.language,
                genres=list(card.genres),
                progress=fraction,
            )
            for card, fraction in zip(row.items, progress, strict=True)
        ],
    )


@router.get("/home", response_model=HomeOut, responses=STANDARD_RESPONSES)
async def home(
    request: Request,
    language: Annotated[LanguageTag | None, Query()] = None,
    device: Annotated[
        DeviceName | None,
        Query(description="The device the page is for (web, tv, ios...); else the User-Agent's."),
    ] = None,
    principal: Principal = Depends(reader),
    recs: RecsService = Depends(_recs),
) -> HomeOut:
    """The profile's home page: Continue Watching, Top Picks, Because You Watched, Trending
    and genre rows, chosen and ordered for this profile and this moment, no title twice."""
    if principal.profile_id is None:
        raise Forbidden("pick a profile to get a home page")
    device = device or device_from_user_agent(request.headers.get("user-agent"))
    viewer = Viewer(
        profile_id=principal.profile_id,
        max_maturity=principal.max_maturity,
        language=language,
        device=device,
    )
    model = recs.model  # no await before home_rows, so it reads this same model
    now = recs.clock.now()
    rows = recs.home_rows(viewer=viewer, now=now)
    context = context_of(now, device)
    return HomeOut(
        profile_id=principal.profile_id,
        model_version=model.version,
        context=ContextOut(
            hour_bucket=context.hour,
            weekend=context.week == 1,
            device=None if context.device == UNKNOWN_DEVICE else DEVICE_CLASSES[context.device],
        ),
        rows=[_row_out(row) for row in rows],
    )


@router.get(
    "/titles/{title_id}/more-like-this", response_model=RowOut, responses=STANDARD_RESPONSES
)
async def more_like_this(
    title_id: uuid.UUID,
    principal: Principal = Depends(reader),
    recs: RecsService = Depends(_recs),
) -> RowOut:
    """Titles like this one that the caller may watch now."""
    viewer = Viewer(profile_id=principal.profile_id or "", max_maturity=principal.max_maturity)
    return _row_out(recs.more_like_this(title_id=str(title_id), viewer=viewer))
