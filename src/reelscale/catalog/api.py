"""Catalog HTTP routes: browse, search and title pages for members; writes for editors."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from reelscale.catalog import service, shapes
from reelscale.catalog.artwork import ArtworkKind
from reelscale.catalog.artwork import render as render_artwork
from reelscale.catalog.runtime import SOURCE, CatalogRuntime
from reelscale.catalog.schemas import (
    GenreCount,
    Kind,
    SearchHit,
    SeasonIn,
    TitleIn,
    TitleOut,
    TitlePage,
    TitleUpdate,
)
from reelscale.catalog.service import Viewer
from reelscale.core.auth import requires
from reelscale.core.errors import NotFound
from reelscale.core.identity import Principal, Scope
from reelscale.core.problems import STANDARD_RESPONSES
from reelscale.core.types import Language

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])

PROBLEMS = STANDARD_RESPONSES

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=100_000)]
Slug = Annotated[str, Path(min_length=1, max_length=60, pattern=r"^[\w-]+$")]

reader = requires(Scope.CATALOG_READ)
editor = requires(Scope.CATALOG_WRITE)


def _runtime(request: Request) -> CatalogRuntime:
    runtime: CatalogRuntime = request.app.state.catalog
    return runtime


def _viewer(runtime: CatalogRuntime, principal: Principal) -> Viewer:
    return Viewer(
        now=runtime.platform.clock.now(),
        max_maturity=principal.max_maturity,
        # Editors see titles outside their availability window, but never past a ceiling.
        sees_unavailable=Scope.CATALOG_WRITE.value in principal.scopes,
    )


@router.get("/genres", response_model=list[GenreCount], responses=PROBLEMS)
async def list_genres(
    principal: Principal = Depends(reader), runtime: CatalogRuntime = Depends(_runtime)
) -> list[GenreCount]:
    """Genres with how many titles this profile may see in each."""
    async with runtime.platform.db.session() as db_session:
        return await service.list_genres(db_session=db_session, viewer=_viewer(runtime, principal))


@router.get("/genres/{slug}/titles", response_model=TitlePage, responses=PROBLEMS)
async def browse_genre(
    slug: Slug,
    limit: Limit = 20,
    offset: Offset = 0,
    principal: Principal = Depends(reader),
    runtime: CatalogRuntime = Depends(_runtime),
) -> TitlePage:
    """One genre's titles, most popular first, a page at a time."""
    async with runtime.platform.db.session() as db_session:
        if not await service.genre_exists(db_session=db_session, slug=slug):
            raise NotFound(f"no genre {slug!r}")
        return await _page(db_session, runtime, principal, limit, offset, genre=slug)


@router.get("/titles", response_model=TitlePage, responses=PROBLEMS)
async def list_titles(
    limit: Limit = 20,
    offset: Offset = 0,
    genre: Annotated[str | None, Query(max_length=60, pattern=r"^[\w-]+$")] = None,
    kind: Kind | None = None,
    language: Annotated[Language | None, Query()] = None,
    sort: Literal["popular", "new", "name"] = "popular",
    principal: Principal = Depends(reader),
    runtime: CatalogRuntime = Depends(_runtime),
) -> TitlePage:
    """Titles, filtered by genre, kind and original language; most popular first, newest
    first, or by name."""
    async with runtime.platform.db.session() as db_session:
        return await _page(
            db_session,
            runtime,
            principal,
            limit,
            offset,
            genre=genre,
            kind=kind,
            language=language,
            sort=sort,
        )


async def _page(
    db_session: Any,
    runtime: CatalogRuntime,
    principal: Principal,
    limit: int,
    offset: int,
    **filters: Any,
) -> TitlePage:
    rows, total = await service.list_titles(
        db_session=db_session,
        viewer=_viewer(runtime, principal),
        limit=limit,
        offset=offset,
        **filters,
    )
    following = offset + len(rows)
    return TitlePage(
        items=[shapes.to_card(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=following if following < total else None,
    )


@router.get(
    "/artwork/{title_id}/{kind}.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, 404: PROBLEMS[404]},
)
async def artwork(
    title_id: uuid.UUID, kind: ArtworkKind, runtime: CatalogRuntime = Depends(_runtime)
) -> Response:
    """Generated poster or backdrop art. Public, like images on a CDN."""
    async with runtime.platform.db.session() as db_session:
        svg = render_artwork(
            await service.get_artwork_facts(db_session=db_session, title_id=title_id), kind
        )
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "public, max-age=86400",
            # An SVG is a document: never let one run script on our origin.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/search", response_model=list[SearchHit], responses=PROBLEMS)
async def search(
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Limit = 20,
    principal: Principal = Depends(reader),
    runtime: CatalogRuntime = Depends(_runtime),
) -> list[SearchHit]:
    """Search titles, cast and genres; tolerant of typos."""
    async with runtime.platform.db.session() as db_session:
        return await service.search(
            db_session=db_session,
            index=runtime.index,
            viewer=_viewer(runtime, principal),
            text=q,
            limit=limit,
        )


@router.get("/titles/{title_id}", response_model=TitleOut, responses=PROBLEMS)
async def get_title(
    title_id: uuid.UUID,
    principal: Principal = Depends(reader),
    runtime: CatalogRuntime = Depends(_runtime),
) -> TitleOut:
    """The title page: synopsis, cast and crew, languages, artwork, seasons and episodes."""
    async with runtime.platform.db.session() as db_session:
        title = await service.get_title(
            db_session=db_session, title_id=title_id, viewer=_viewer(runtime, principal)
        )
        return shapes.to_out(title)


@router.post(
    "/titles", status_code=status.HTTP_201_CREATED, response_model=TitleOut, responses=PROBLEMS
)
async def create_title(
    data: TitleIn,
    principal: Principal = Depends(editor),
    runtime: CatalogRuntime = Depends(_runtime),
) -> TitleOut:
    """Create a movie or a series (with its seasons and episodes) in one transaction."""
    async with runtime.platform.db.transaction() as db_session:
        title = await service.create_title(
            db_session=db_session, data=data, now=runtime.platform.clock.now()
        )
        out = shapes.to_out(title)
    await _emit(runtime, "catalog.title.created", out.id, principal)
    return out


@router.patch("/titles/{title_id}", response_model=TitleOut, responses=PROBLEMS)
async def update_title(
    title_id: uuid.UUID,
    data: TitleUpdate,
    principal: Principal = Depends(editor),
    runtime: CatalogRuntime = Depends(_runtime),
) -> TitleOut:
    """Change some fields of a title; lists given replace the old ones whole."""
    async with runtime.platform.db.transaction() as db_session:
        title = await service.update_title(
            db_session=db_session, title_id=title_id, data=data, now=runtime.platform.clock.now()
        )
        out = shapes.to_out(title)
    await _emit(runtime, "catalog.title.updated", out.id, principal)
    return out


@router.post(
    "/titles/{title_id}/seasons",
    status_code=status.HTTP_201_CREATED,
    response_model=TitleOut,
    responses=PROBLEMS,
)
async def add_season(
    title_id: uuid.UUID,
    data: SeasonIn,
    principal: Principal = Depends(editor),
    runtime: CatalogRuntime = Depends(_runtime),
) -> TitleOut:
    """Add a season, with its episodes, to a series."""
    async with runtime.platform.db.transaction() as db_session:
        title = await service.add_season(
            db_session=db_session, title_id=title_id, data=data, now=runtime.platform.clock.now()
        )
        out = shapes.to_out(title)
    await _emit(runtime, "catalog.title.updated", out.id, principal)
    return out


@router.delete("/titles/{title_id}", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
async def delete_title(
    title_id: uuid.UUID,
    principal: Principal = Depends(editor),
    runtime: CatalogRuntime = Depends(_runtime),
) -> Response:
    async with runtime.platform.db.transaction() as db_session:
        await service.delete_title(db_session=db_session, title_id=title_id)
    await _emit(runtime, "catalog.title.deleted", title_id, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _emit(runtime: CatalogRuntime, type_: str, title_id: uuid.UUID, by: Principal) -> None:
    await runtime.platform.events.emit(
        source=SOURCE, type=type_, subject=str(title_id), data={"by": by.subject}
    )
