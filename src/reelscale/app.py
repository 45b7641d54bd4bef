"""`create_app(settings, roles)`: assemble the chosen services into one ASGI app.

One process may run every role (`all`, the embedded default) or a few. A role that runs
here is reached through its in-process client; a role that runs elsewhere is reached
through its HTTP client at the URL in settings. Nothing is created at import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

import reelscale
from reelscale.accounts.api import router as accounts_router
from reelscale.accounts.client import Accounts, HttpAccounts
from reelscale.accounts.inprocess import InProcessAccounts, InProcessProfiles
from reelscale.accounts.runtime import MIGRATIONS as ACCOUNTS_MIGRATIONS
from reelscale.accounts.runtime import AccountsRuntime
from reelscale.analytics.api import router as analytics_router
from reelscale.analytics.functions import register as register_analytics
from reelscale.analytics.service import Analytics, AnalyticsConfig
from reelscale.catalog.api import router as catalog_router
from reelscale.catalog.client import Catalog, HttpCatalog
from reelscale.catalog.inprocess import InProcessCatalog
from reelscale.catalog.runtime import MIGRATIONS as CATALOG_MIGRATIONS
from reelscale.catalog.runtime import CatalogRuntime
from reelscale.core.auth import forward_bearer
from reelscale.core.clock import Clock, SystemClock
from reelscale.core.db import Database
from reelscale.core.events import CloudEvent
from reelscale.core.health import router as health_router
from reelscale.core.identity import TokenVerifier, parse_revocation
from reelscale.core.identity_headers import IdentityHeaders
from reelscale.core.lifecycle import Service, Supervisor
from reelscale.core.metrics import Metrics
from reelscale.core.middleware import BodyLimitMiddleware, RequestContextMiddleware
from reelscale.core.migrations import MigrationSet, migrate
from reelscale.core.platform import Platform
from reelscale.core.problems import install_error_handlers
from reelscale.core.settings import Settings
from reelscale.core.telemetry import ServiceMetricsReporter
from reelscale.edge.middleware import EdgeMiddleware
from reelscale.edge.runtime import EdgeRuntime
from reelscale.events.backends import event_store_from_url
from reelscale.events.publisher import PlatformStreams, StreamPublisher
from reelscale.functions import FunctionRegistry, FunctionsRuntime
from reelscale.functions.api import router as functions_router
from reelscale.media.api import router as media_router
from reelscale.media.blob_url import blob_store_from_url
from reelscale.media.blobs import BlobStore
from reelscale.media.client import HttpMedia, Media
from reelscale.media.inprocess import InProcessMedia
from reelscale.media.runtime import CHUNK_MAX_BYTES, MediaRuntime
from reelscale.media.runtime import MIGRATIONS as MEDIA_MIGRATIONS
from reelscale.platform_functions import (
    RevocationCatchUp,
    register_recs,
    register_revocations,
)
from reelscale.playback.api import router as playback_router
from reelscale.playback.delivery import router as delivery_router
from reelscale.playback.inprocess import InProcessSignals
from reelscale.playback.runtime import MIGRATIONS as PLAYBACK_MIGRATIONS
from reelscale.playback.runtime import PlaybackRuntime
from reelscale.playback.service import HEARTBEAT_S
from reelscale.recs.api import router as recs_router
from reelscale.recs.artifacts import ModelStore, default_directory
from reelscale.recs.serving import RecsService
from reelscale.recs.sources import PlatformSources
from reelscale.web.routes import mount_web

ROLES = ("accounts", "catalog", "media", "worker", "playback", "recs", "web")


class RoleError(ValueError):
    pass


def parse_roles(roles: str | Iterable[str]) -> frozenset[str]:
    """`all`, or a comma-separated subset of ROLES."""
    items = roles.split(",") if isinstance(roles, str) else list(roles)
    chosen = {item.strip() for item in items if item.strip()}
    if not chosen:
        raise RoleError("give at least one role")
    if "all" in chosen:
        return frozenset(ROLES)
    unknown = chosen - set(ROLES)
    if unknown:
        raise RoleError(
            f"unknown role(s) {', '.join(sorted(unknown))}; choose from all, {', '.join(ROLES)}"
        )
    return frozenset(chosen)


class Migrator(Service):
    name = "migrations"

    def __init__(self, db: Database, sets: list[MigrationSet]) -> None:
        super().__init__()
        self.db = db
        self.sets = sets

    async def on_start(self) -> None:
        await migrate(self.db, self.sets)


class BlobService(Service):
    """Opens the blob store on start and releases it on stop, for every role that uses it."""

    name = "blobs"

    def __init__(self, blobs: BlobStore) -> None:
        super().__init__()
        self.blobs = blobs

    async def on_start(self) -> None:
        await self.blobs.start()

    async def on_stop(self) -> None:
        await self.blobs.aclose()


class ClientCloser(Service):
    """Closes a remote client's connection pool on shutdown."""

    name = "client"

    def __init__(self, client: Accounts | Catalog | Media) -> None:
        super().__init__()
        self.client = client

    async def on_stop(self) -> None:
        await self.client.aclose()


def create_app(
    settings: Settings, roles: str | Iterable[str] = "all", *, clock: Clock | None = None
) -> FastAPI:
    chosen = parse_roles(roles)
    clock = clock or SystemClock()
    metrics = Metrics()
    db = Database(settings.resolved_database_url)
    store = event_store_from_url(settings.stream_url, data_dir=settings.data_dir, clock=clock)
    events = StreamPublisher(store, clock=clock, metrics=metrics)
    accounts: list[Accounts] = []  # filled below; the verifier fetches keys lazily

    async def fetch_jwks() -> dict[str, object]:
        return await accounts[0].jwks()

    platform = Platform(
        settings=settings,
        roles=chosen,
        clock=clock,
        metrics=metrics,
        db=db,
        events=events,
        verifier=TokenVerifier(
            fetch_jwks=fetch_jwks,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            clock=clock,
        ),
    )
    supervisor = platform.supervisor
    supervisor.add(db)
    supervisor.add(store)
    streams = supervisor.add(PlatformStreams(store), depends_on=[store])
    telemetry = ServiceMetricsReporter(
        events=events,
        metrics=metrics,
        roles=chosen,
        interval_s=settings.metrics_interval_s,
        instance=settings.instance_name,
    )
    supervisor.add(telemetry, depends_on=[streams])
    functions_registry = FunctionRegistry()  # the consumers of the streams, added below
    owners = {
        "accounts": ACCOUNTS_MIGRATIONS,
        "catalog": CATALOG_MIGRATIONS,
        "media": MEDIA_MIGRATIONS,
        "worker": MEDIA_MIGRATIONS,
        "playback": PLAYBACK_MIGRATIONS,
    }
    sets = list({m.service: m for role, m in owners.items() if role in chosen}.values())
    # Every service starts after the streams exist, so whatever it emits on start is kept.
    migrator = supervisor.add(Migrator(db, sets), depends_on=[db, streams])

    app = FastAPI(
        title="reelscale",
        version=reelscale.__version__,
        summary="A self-hostable video-streaming platform.",
        lifespan=_lifespan(platform),
    )
    app.state.platform = platform
    app.state.telemetry = telemetry
    app.state.verifier = platform.verifier

    if "accounts" in chosen:
        accounts_runtime = AccountsRuntime(platform)
        supervisor.add(accounts_runtime, depends_on=[migrator])
        app.state.accounts = accounts_runtime
        accounts.append(InProcessAccounts(accounts_runtime))
        app.include_router(accounts_router)
    else:
        if not settings.accounts_url:
            raise RoleError(
                "this process does not run accounts: set REELSCALE_ACCOUNTS_URL to where it runs"
            )
        remote = HttpAccounts(settings.accounts_url)
        accounts.append(remote)
        supervisor.add(ClientCloser(remote))

    catalog: Catalog | None = None
    if "catalog" in chosen:
        catalog_runtime = CatalogRuntime(platform)
        supervisor.add(catalog_runtime, depends_on=[migrator])
        app.state.catalog = catalog_runtime
        app.include_router(catalog_router)
        catalog = InProcessCatalog(catalog_runtime)

    blobs = blob_store_from_url(settings.blob_url, settings.data_dir)
    blob_service = BlobService(blobs)
    if chosen & {"media", "worker", "playback"}:
        supervisor.add(blob_service)
    media: Media | None = None
    if chosen & {"media", "worker"}:
        media_runtime = MediaRuntime(platform, blobs, workers="worker" in chosen)
        supervisor.add(media_runtime, depends_on=[migrator, blob_service])
        app.state.media = media_runtime
        media = InProcessMedia(media_runtime)
        if "media" in chosen:
            app.include_router(media_router)

    if "playback" in chosen:
        catalog = catalog or _remote(supervisor, "catalog", settings.catalog_url, HttpCatalog)
        media = media or _remote(supervisor, "media", settings.media_url, HttpMedia)
        playback_runtime = PlaybackRuntime(platform, catalog=catalog, media=media, files=blobs)
        supervisor.add(playback_runtime, depends_on=[migrator, blob_service])
        app.state.playback = playback_runtime
        app.include_router(playback_router)
        app.include_router(delivery_router)

    if "recs" in chosen:
        if "catalog" not in chosen or "playback" not in chosen:
            raise RoleError("recs runs beside catalog and playback (remote sources come later)")
        recs = RecsService(
            catalog=InProcessCatalog(app.state.catalog),
            signals=InProcessSignals(app.state.playback),
            profiles=InProcessProfiles(app.state.accounts) if "accounts" in chosen else None,
            clock=clock,
            metrics=metrics,
            store=ModelStore(default_directory(settings.data_dir)),
        )
        supervisor.add(recs, depends_on=[app.state.catalog, app.state.playback])
        app.state.recs = recs
        app.include_router(recs_router)

    if "recs" in chosen:
        register_recs(functions_registry, app.state.recs)

    if "web" in chosen:
        mount_web(app)

    # This process learns of the revocations it makes at once; every process (this one
    # too, harmlessly) learns of them through the auth stream.
    events.tap(_revocations_to(platform.verifier))
    register_revocations(
        functions_registry,
        verifier=platform.verifier,
        instance=settings.instance_name,
        clock=clock,
        token_ttl_s=settings.access_token_ttl_s,
    )
    # ... and, on every start, re-reads those of the last token lifetime: the function
    # resumes after its checkpoint, so it would not see again what it applied before.
    supervisor.add(
        RevocationCatchUp(
            store,
            verifier=platform.verifier,
            instance=settings.instance_name,
            clock=clock,
            token_ttl_s=settings.access_token_ttl_s,
        ),
        depends_on=[store, streams],
    )
    # Live analytics over the platform's streams, in every process that serves the API
    # (each aggregates every shard itself: its consumer groups are named after it).
    analytics = Analytics(
        clock=clock, config=AnalyticsConfig(heartbeat_interval_s=float(HEARTBEAT_S))
    )
    supervisor.add(analytics)
    app.state.analytics = analytics
    register_analytics(functions_registry, analytics, instance=settings.instance_name)
    app.include_router(analytics_router)

    # The functions start last and stop first: their handlers use the services above.
    functions = FunctionsRuntime(
        store, functions_registry, clock=clock, registry_metrics=metrics.registry
    )
    supervisor.add(functions, depends_on=list(supervisor.services))
    app.state.functions = functions
    app.include_router(functions_router)
    app.include_router(health_router)

    if "web" not in chosen:

        @app.get("/", include_in_schema=False)
        async def root() -> RedirectResponse:
            return RedirectResponse("/docs")

    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        overrides={"/v1/media/uploads/": CHUNK_MAX_BYTES},
    )
    # The last middleware added is the outermost: request context -> edge -> body limit.
    # So the edge's refusals carry a request id and are counted, and a shed or
    # unauthenticated request is refused before its body is read.
    identity_headers = IdentityHeaders(
        secret=settings.resolved_secret_key, clock=clock, required=settings.require_edge_identity
    )
    app.state.identity_headers = identity_headers
    app.state.edge = None
    if settings.edge_enabled:
        edge = EdgeRuntime.from_settings(
            settings,
            registry=metrics.registry,
            verifier=platform.verifier,
            identity_headers=identity_headers,
        )
        supervisor.add(edge)
        app.state.edge = edge
        app.add_middleware(EdgeMiddleware, **edge.middleware_options())
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


@contextlib.asynccontextmanager
async def recs_training_sources(settings: Settings) -> AsyncIterator[PlatformSources]:
    """The platform's data for `reelscale recs train`: the same in-process sources the
    server's recommender reads, over the deployment's database (built, not started: no
    migrations run, no workers, no stream)."""
    app = create_app(settings, "all")
    db = app.state.platform.db
    await db.start()
    try:
        yield PlatformSources(
            catalog=InProcessCatalog(app.state.catalog),
            signals=InProcessSignals(app.state.playback),
            profiles=InProcessProfiles(app.state.accounts),
        )
    finally:
        await db.stop()


def _remote(supervisor: Supervisor, role: str, url: str | None, client: type) -> Any:
    """The HTTP client for a role that runs elsewhere; it acts with the caller's token."""
    if not url:
        raise RoleError(
            f"this process needs {role} but does not run it: set "
            f"REELSCALE_{role.upper()}_URL to where it runs"
        )
    remote = client(url, token=forward_bearer)
    supervisor.add(ClientCloser(remote))
    return remote


def _revocations_to(verifier: TokenVerifier):  # type: ignore[no-untyped-def]
    async def on_revoked(event: CloudEvent) -> None:
        if event.type != "auth.session.revoked":
            return
        revoked = parse_revocation(event.data)
        if revoked is not None:
            verifier.revoke_session(*revoked)

    return on_revoked


def _lifespan(platform: Platform):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await platform.supervisor.start()
        try:
            yield
        finally:
            await platform.supervisor.stop()

    return lifespan
