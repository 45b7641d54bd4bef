"""Alembic migrations, one history per service.

Each service owns its tables, its migration scripts (`<service>/migrations/`) and its own
version table (`alembic_version_<service>`), so a process migrates exactly the services it
runs and a service can later move to its own database without untangling a shared history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from reelscale.core.db import Database

_ALEMBIC_DIR = Path(__file__).with_name("alembic")
_PG_MIGRATION_LOCK = 0x5EE15CA1E  # one advisory lock id for every reelscale process


@dataclass(frozen=True)
class MigrationSet:
    """What a service hands the migrator: its tables and where its scripts live."""

    service: str
    metadata: MetaData
    versions_dir: Path


def alembic_config(migration_set: MigrationSet, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_ALEMBIC_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(migration_set.versions_dir))
    config.attributes["connection"] = connection
    config.attributes["metadata"] = migration_set.metadata
    config.attributes["version_table"] = f"alembic_version_{migration_set.service}"
    config.attributes["include_name"] = own_tables_only(migration_set.metadata)
    return config


def _upgrade(connection: Connection, migration_sets: list[MigrationSet]) -> None:
    for migration_set in migration_sets:
        command.upgrade(alembic_config(migration_set, connection), "head")


async def migrate(database: Database, migration_sets: list[MigrationSet]) -> None:
    """Bring every given service's tables to head. Safe to run from many processes at once."""
    async with database.writer.begin() as connection:
        if database.is_postgres:
            # Serialise concurrent starters; SQLite's BEGIN IMMEDIATE already does.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        await connection.run_sync(_upgrade, migration_sets)


def own_tables_only(metadata: MetaData) -> Callable[[str | None, str, Any], bool]:
    """An Alembic `include_name` hook: services share a database, and each sees only its own
    tables, so autogenerate for one never proposes dropping another's."""
    own = set(metadata.tables)

    def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
        return type_ != "table" or name in own

    return include_name


def pending_differences(connection: Connection, migration_set: MigrationSet) -> list[Any]:
    """Differences between the migrated schema and the models; empty when they agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        connection,
        opts={
            "version_table": f"alembic_version_{migration_set.service}",
            "include_name": own_tables_only(migration_set.metadata),
            "compare_type": True,
        },
    )
    return list(compare_metadata(context, migration_set.metadata))
