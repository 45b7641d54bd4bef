"""Operator tasks that act on a deployment's database directly, used by the CLI."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection

from reelscale.accounts import service as accounts_service
from reelscale.accounts.roles import Role
from reelscale.accounts.runtime import MIGRATIONS as ACCOUNTS_MIGRATIONS
from reelscale.catalog.runtime import MIGRATIONS as CATALOG_MIGRATIONS
from reelscale.core.db import Database
from reelscale.core.migrations import MigrationSet, alembic_config, migrate
from reelscale.core.settings import Settings
from reelscale.media.runtime import MIGRATIONS as MEDIA_MIGRATIONS
from reelscale.playback.runtime import MIGRATIONS as PLAYBACK_MIGRATIONS

MIGRATION_SETS = {
    "accounts": ACCOUNTS_MIGRATIONS,
    "catalog": CATALOG_MIGRATIONS,
    "media": MEDIA_MIGRATIONS,
    "playback": PLAYBACK_MIGRATIONS,
}


async def migrate_only(settings: Settings, roles: frozenset[str]) -> None:
    db = Database(settings.resolved_database_url)
    await db.start()
    try:
        await migrate(db, [MIGRATION_SETS[r] for r in sorted(roles) if r in MIGRATION_SETS])
    finally:
        await db.stop()


async def autogenerate(settings: Settings, service: str, message: str) -> Path:
    if service not in MIGRATION_SETS:
        raise ValueError(f"unknown service {service!r}")
    migration_set = MIGRATION_SETS[service]
    migration_set.versions_dir.mkdir(exist_ok=True)
    db = Database(settings.resolved_database_url)
    await db.start()
    try:
        await migrate(db, [migration_set])
        async with db.writer.begin() as connection:
            await connection.run_sync(_revision, migration_set, message)
    finally:
        await db.stop()
    return migration_set.versions_dir


def _revision(connection: Connection, migration_set: MigrationSet, message: str) -> None:
    command.revision(
        alembic_config(migration_set, connection),
        message=message,
        autogenerate=True,
        version_path=str(migration_set.versions_dir),
    )


async def grant_role(settings: Settings, email: str, role: str) -> None:
    try:
        chosen = Role(role)
    except ValueError:
        raise ValueError(
            f"unknown role {role!r}; choose from {', '.join(r.value for r in Role)}"
        ) from None
    db = Database(settings.resolved_database_url)
    await db.start()
    try:
        await migrate(db, [ACCOUNTS_MIGRATIONS])
        async with db.transaction() as db_session:
            member = await accounts_service.find_member(db_session=db_session, email=email)
            await accounts_service.set_role(db_session=db_session, member_id=member.id, role=chosen)
    finally:
        await db.stop()
