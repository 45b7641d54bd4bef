"""`reelscale ...` commands."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from reelscale.core.errors import PlatformError
from reelscale.core.settings import Settings
from reelscale.functions.cli import app as functions_app
from reelscale.recs import cli as recs_cli
from reelscale.recs.cli import app as recs_app

app = typer.Typer(
    help="reelscale: a self-hostable video-streaming platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
members_app = typer.Typer(help="Members and roles.", no_args_is_help=True)
deploy_app = typer.Typer(help="Configuration for scaled-out deployments.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Benchmarks; each prints one JSON object as its last line.", no_args_is_help=True
)
edge_app = typer.Typer(help="The edge proxy's optional native build.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(members_app, name="members")
app.add_typer(deploy_app, name="deploy")
app.add_typer(bench_app, name="bench")
app.add_typer(edge_app, name="edge")
app.add_typer(recs_app, name="recs")
app.add_typer(functions_app, name="functions")
console = Console(stderr=True)


def _recs_training_sources(settings: Settings) -> Any:
    from reelscale.app import recs_training_sources  # imported only by `recs train`

    return recs_training_sources(settings)


recs_cli.use_platform_sources(_recs_training_sources)

RolesOpt = Annotated[
    str, typer.Option("--roles", help="Comma-separated roles to run here: all, accounts, catalog.")
]
HostOpt = Annotated[str | None, typer.Option(help="Address to listen on.")]
PortOpt = Annotated[int | None, typer.Option(help="Port to listen on.")]


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        console.print(f"[red]Invalid settings:[/red]\n{exc}")
        raise typer.Exit(2) from None


@app.command()
def serve(roles: RolesOpt = "all", host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the chosen roles in this process (all of them by default)."""
    settings = load_settings(host=host, port=port)
    _serve(settings, roles)


def _serve(settings: Settings, roles: str) -> None:
    from reelscale.core.logging import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)
    if "edge" in {role.strip() for role in roles.split(",")}:
        # The edge is a standalone reverse proxy in front of the other roles, not an app
        # (so it imports none of them: it starts in a fraction of a second).
        from reelscale.edge.proxy.main import EdgeConfigError, serve_edge

        try:
            serve_edge(settings, roles)
        except EdgeConfigError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        return
    import uvicorn

    from reelscale.app import RoleError, create_app
    from reelscale.core.lifecycle import freeze_startup_heap

    try:
        application = create_app(settings, roles)
    except RoleError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Off: the edge reads X-Forwarded-For itself, only from REELSCALE_TRUSTED_PROXIES
        # (edge/forwarded.py); uvicorn's own would apply it a second time.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=64 * 1024,
    )

    class PlatformServer(uvicorn.Server):
        """Ends the live analytics streams when shutdown begins: uvicorn tells the app
        nothing until open responses finish, and a live stream never finishes on its own."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            freeze_startup_heap()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            analytics = getattr(application.state, "analytics", None)
            if analytics is not None:
                analytics.close()
            await super().shutdown(sockets)

    PlatformServer(config).run()


@app.command()
def demo(host: HostOpt = None, port: PortOpt = None) -> None:
    """Seed demo titles, members and profiles (once), print how to sign in, then serve."""
    from reelscale.demo.seed import CREDENTIALS, seed

    settings = load_settings(host=host, port=port)
    if settings.env == "production":
        console.print(
            "[red]reelscale demo seeds well-known passwords; it refuses to run with "
            "REELSCALE_ENV=production.[/red]"
        )
        raise typer.Exit(2)
    console.print(f"[bold]reelscale demo[/bold] · data in {settings.ensure_data_dir()}")
    created = asyncio.run(seed(settings, progress=console))
    console.print(
        f"Seeded {created.titles} titles and {created.members} members."
        if created.titles
        else "Demo catalog and members already present; reusing them."
    )
    console.print(
        f"Transcoded {created.videos} demo videos."
        if created.videos
        else "Demo videos already transcoded; reusing them."
    )
    console.print(f"\n[bold green]Open {settings.base_url}/[/bold green]  (API: /docs)\n")
    for email, password, what in CREDENTIALS:
        console.print(f"  {what:<28} {email}  /  {password}")
    console.print("\nStop with Ctrl-C.\n")
    _serve(settings, "all")


@db_app.command("upgrade")
def db_upgrade(roles: RolesOpt = "all") -> None:
    """Apply pending migrations for the given roles (also done on every start)."""
    from reelscale.admin import migrate_only
    from reelscale.app import parse_roles

    asyncio.run(migrate_only(load_settings(), parse_roles(roles)))
    console.print("migrations applied")


@db_app.command("revision")
def db_revision(
    service: Annotated[str, typer.Argument(help="accounts or catalog")],
    message: Annotated[str, typer.Option("-m", "--message")],
) -> None:
    """Autogenerate a migration for one service from its models (for developers)."""
    from reelscale.admin import autogenerate

    path = asyncio.run(autogenerate(load_settings(), service, message))
    console.print(f"wrote {path}")


@members_app.command("set-role")
def set_role(
    email: str, role: Annotated[str, typer.Argument(help="member, editor, admin or service")]
) -> None:
    """Grant a role to a member by email (a bootstrap for the first admin)."""
    from reelscale.admin import grant_role

    try:
        asyncio.run(grant_role(load_settings(), email, role))
    except (ValueError, PlatformError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"{email} is now {role}")


@bench_app.command("stream")
def bench_stream(
    backend: Annotated[str, typer.Option(help="embedded or nats")] = "embedded",
    url: Annotated[str | None, typer.Option(help="NATS URL (default REELSCALE_STREAM_URL)")] = None,
    events: int = 300_000,
    batch: int = 1000,
    producers: int = 4,
    shards: int = 4,
    rate: int = 5000,
    seconds: float = 5.0,
    one_core: bool = True,
) -> None:
    """Durable put throughput, put-to-handler latency at a steady rate, consume throughput."""
    from reelscale.events import bench

    settings = load_settings()
    if backend not in ("embedded", "nats"):
        console.print("[red]--backend is embedded or nats[/red]")
        raise typer.Exit(2)
    nats_url = (
        (url or settings.stream_url or "nats://127.0.0.1:4222") if backend == "nats" else None
    )
    result = bench.stream(
        backend,
        url=nats_url,
        directory=settings.ensure_data_dir(),
        events=events,
        batch=batch,
        producers=producers,
        shards=shards,
        rate=rate,
        latency_s=seconds,
        one_core=one_core,
    )
    print(json.dumps(result))


@bench_app.command("crash")
def bench_crash(kills: Annotated[int, typer.Option(min=1)] = 200, seed: int = 0) -> None:
    """SIGKILL a writer at random moments; count acknowledged events lost or corrupt."""
    from reelscale.events import bench

    result = bench.crash(kills=kills, directory=load_settings().ensure_data_dir(), seed=seed)
    print(json.dumps(result))


@bench_app.command("recs")
def bench_recs(
    profiles: int = 1000, titles: int = 1700, requests: int = 10_000, seed: int = 42
) -> None:
    """Latency of a profile's home rows served from memory (synthetic catalog and signals)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, before numpy loads
    from reelscale.recs.bench import serving_latency

    result = serving_latency(profiles=profiles, titles=titles, requests=requests, seed=seed)
    print(json.dumps(result))


@bench_app.command("analytics")
def bench_analytics(
    sessions: Annotated[int, typer.Option(min=1)] = 2000,
    minutes: Annotated[int, typer.Option(min=1, max=60)] = 10,
) -> None:
    """Live analytics: events/s folded into the windows, and snapshot latency."""
    from reelscale.analytics.bench import ingest

    print(json.dumps(ingest(sessions=sessions, minutes=minutes)))


@bench_app.command("transcode")
def bench_transcode() -> None:
    """Our ladder encode vs one plain ffmpeg command line, on the demo videos."""
    from reelscale.bench import transcode

    settings = load_settings()
    result = transcode.main(settings.ensure_data_dir() / "bench-transcode", log=console.print)
    print(json.dumps(result))


@bench_app.command("startup")
def bench_startup(
    plays: Annotated[int, typer.Option(min=20, help="How many plays to time")] = 20,
    chromium: Annotated[str, typer.Option(help="Chromium executable")] = "/usr/bin/chromium",
) -> None:
    """Time to first frame in headless Chromium, from pressing Play."""
    from reelscale.bench import startup

    settings = load_settings()
    result = startup.run(
        settings.ensure_data_dir() / "bench-startup",
        plays=plays,
        chromium=chromium,
        log=console.print,
    )
    print(json.dumps(result))


@deploy_app.command("nginx")
def deploy_nginx(
    out: Annotated[Path, typer.Option(help="Directory to write reelscale.conf and media_auth.js")],
    listen: Annotated[int, typer.Option(help="Port nginx listens on")] = 80,
    upstream: Annotated[str, typer.Option(help="host:port of the platform")] = "127.0.0.1:8000",
) -> None:
    """Write an nginx server block that serves media from disk and checks signed URLs."""
    from reelscale.media.blob_url import blob_store_from_url
    from reelscale.playback.nginx import write_nginx_bundle
    from reelscale.playback.signing import media_key

    settings = load_settings()
    store = blob_store_from_url(settings.blob_url, settings.data_dir)
    root = store.local_path("assets")
    if root is None:
        console.print("[red]nginx serves media from disk; with S3 storage use a CDN instead.[/red]")
        raise typer.Exit(2)
    config = write_nginx_bundle(
        out,
        listen_port=listen,
        media_root=root.parent,
        upstream=upstream,
        media_key=media_key(settings.resolved_secret_key()),
    )
    console.print(f"wrote {config} (it holds the media key: keep it private)")
    console.print("include it in nginx's http {} block, then: nginx -t && nginx -s reload")


@bench_app.command("proxy")
def bench_proxy(
    seconds: Annotated[float, typer.Option(min=1, help="Measured seconds per path")] = 5.0,
    connections: Annotated[int, typer.Option(min=1, help="wrk connections")] = 32,
    body_bytes: Annotated[int, typer.Option(min=1, help="The origin's response size")] = 128,
    native: Annotated[
        bool,
        typer.Option(
            "--native",
            help="Also measure the edge compiled with mypyc (built first, about a minute, "
            "unless cached)",
        ),
    ] = False,
) -> None:
    """Proxied requests/s per core: the edge vs nginx as a reverse proxy vs direct (wrk)."""
    from reelscale.edge import bench_proxy as bench
    from reelscale.edge.native import NativeBuildError

    try:
        result = bench.run(
            seconds=seconds,
            connections=connections,
            body_bytes=body_bytes,
            native_edge=native,
            log=console.print,
        )
    except NativeBuildError as exc:
        console.print(f"The native edge: {exc}", style="red", markup=False)
        raise typer.Exit(1) from None
    print(json.dumps(result))


@edge_app.command("build-native")
def edge_build_native(
    into: Annotated[
        Path | None, typer.Option(help="Build here (default: the user's cache, per sources)")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if the build is current")] = False,
) -> None:
    """Compile the edge's hot path with mypyc; prints the directory to put first on PYTHONPATH.

    Then: PYTHONPATH=DIR reelscale serve --roles edge (the default install is unchanged)."""
    from reelscale.edge.native import NativeBuildError, ensure_built

    try:
        build = ensure_built(into=into, force=force, log=console.print)
    except NativeBuildError as exc:
        console.print(f"The native edge: {exc}", style="red", markup=False)
        raise typer.Exit(1) from None
    state = f"built in {build.build_s:.0f} s" if build.built_now else "current, from the cache"
    console.print(f"{len(build.modules)} modules compiled ({state}); run the edge with:")
    command = f"  PYTHONPATH={build.directory} reelscale serve --roles edge"
    console.print(command, markup=False, soft_wrap=True)  # one line, to copy
    print(build.directory)


@bench_app.command("overload")
def bench_overload(
    quick: Annotated[bool, typer.Option(help="A short run with a smaller origin (tests)")] = False,
) -> None:
    """Offered load at 1x, 2x, 4x, 10x capacity, shedding on and off, per priority class."""
    from reelscale.edge.bench_overload import Plan, run

    result = run(Plan.quick() if quick else Plan.full(), log=console.print)
    print(json.dumps(result))


@bench_app.command("functions")
def bench_functions(
    backend: Annotated[str, typer.Option(help="embedded or nats")] = "embedded",
    rate: Annotated[int, typer.Option(min=1, help="Events per second, steady")] = 5000,
    seconds: Annotated[float, typer.Option(min=0.1, help="Measured seconds")] = 10.0,
    nats_url: Annotated[
        str | None, typer.Option(help="NATS URL (default REELSCALE_STREAM_URL)")
    ] = None,
) -> None:
    """Put-to-function-handler latency through the functions runtime, and its throughput."""
    from reelscale.functions.bench import DEFAULT_NATS_URL, functions_bench

    settings = load_settings()
    if backend not in ("embedded", "nats"):
        console.print("[red]--backend is embedded or nats[/red]")
        raise typer.Exit(2)
    configured = settings.stream_url or ""
    if not configured.startswith(("nats://", "tls://")):
        configured = ""  # an embedded stream URL says nothing about where NATS is
    url = (nats_url or configured or DEFAULT_NATS_URL) if backend == "nats" else None
    try:
        result = functions_bench(
            backend, rate=rate, seconds=seconds, nats_url=url, directory=settings.ensure_data_dir()
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    print(json.dumps(result))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
