"""`reelscale ...` commands."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from reelscale.core.errors import PlatformError
from reelscale.core.settings import Settings

app = typer.Typer(
    help="reelscale: a self-hostable video-streaming platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
members_app = typer.Typer(help="Members and roles.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(members_app, name="members")
console = Console(stderr=True)

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
    import uvicorn

    from reelscale.app import RoleError, create_app
    from reelscale.core.logging import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)
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
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=64 * 1024,
    )
    uvicorn.Server(config).run()


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
        else "Demo data already present; reusing it."
    )
    console.print(f"\n[bold green]Open {settings.base_url}/docs[/bold green]\n")
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
