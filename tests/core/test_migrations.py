"""Migrations run on start, are idempotent, and match the models on both databases."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect

from reelscale.admin import MIGRATION_SETS
from reelscale.core.db import Database
from reelscale.core.migrations import migrate, pending_differences

pytestmark = pytest.mark.asyncio


async def test_models_match_migrations(database_url: str) -> None:
    db = Database(database_url)
    await db.start()
    try:
        sets = list(MIGRATION_SETS.values())
        # Several processes starting at once must not trip over each other.
        await asyncio.gather(migrate(db, sets), migrate(db, sets))
        await migrate(db, sets)
        async with db.writer.connect() as connection:
            for migration_set in sets:
                diffs = await connection.run_sync(pending_differences, migration_set)
                assert diffs == [], f"{migration_set.service} models differ from migrations"
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {
            "accounts_members",
            "catalog_titles",
            "alembic_version_accounts",
            "alembic_version_catalog",
        } <= tables
    finally:
        await db.stop()


async def test_only_the_roles_run_here_are_migrated(database_url: str) -> None:
    db = Database(database_url)
    await db.start()
    try:
        await migrate(db, [MIGRATION_SETS["catalog"]])
        async with db.writer.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "catalog_titles" in tables
        assert "accounts_members" not in tables
    finally:
        await db.stop()
