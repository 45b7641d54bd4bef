"""The database: one async SQLAlchemy engine per process, chosen by URL.

SQLite (the embedded default) allows one writer at a time. Rather than let concurrent
writers collide and retry, the process keeps a single writer connection whose transactions
start with BEGIN IMMEDIATE, so writers queue in the pool instead of failing with
SQLITE_BUSY, while readers use their own pool and WAL lets them run alongside the writer.
PostgreSQL needs none of that: reads and writes share one pooled engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from reelscale.core.lifecycle import Service

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # NORMAL in WAL mode survives a killed process; only an OS crash can drop the last commit.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",  # other processes sharing the file wait instead of failing
)


class Database(Service):
    name = "database"

    def __init__(self, url: str, *, echo: bool = False) -> None:
        super().__init__()
        self.url = make_url(url)
        self.echo = echo
        self._writer: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._write_sessions: async_sessionmaker[AsyncSession] | None = None
        self._read_sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    async def on_start(self) -> None:
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._sqlite_engine(immediate=True, pool_size=1)
            self._reader = self._sqlite_engine(immediate=False, pool_size=5)
        else:
            self._writer = create_async_engine(
                self.url, echo=self.echo, pool_pre_ping=True, pool_size=10, max_overflow=10
            )
            self._reader = self._writer
        self._write_sessions = async_sessionmaker(self._writer, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self._reader, expire_on_commit=False)

    def _sqlite_engine(self, *, immediate: bool, pool_size: int) -> AsyncEngine:
        engine = create_async_engine(
            self.url, echo=self.echo, pool_size=pool_size, max_overflow=0, pool_timeout=30
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the driver so BEGIN is ours to emit.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    async def on_stop(self) -> None:
        if self._reader is not None and self._reader is not self._writer:
            await self._reader.dispose()
        if self._writer is not None:
            await self._writer.dispose()
        self._writer = self._reader = None

    @property
    def writer(self) -> AsyncEngine:
        if self._writer is None:
            raise RuntimeError("database not started")
        return self._writer

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read session; nothing it does is committed."""
        if self._read_sessions is None:
            raise RuntimeError("database not started")
        async with self._read_sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        if self._write_sessions is None:
            raise RuntimeError("database not started")
        async with self._write_sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.session() as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            return False
        return True
