"""Consumer-group checkpoints in their own SQLite file, beside the log.

Separate from the platform's database on purpose: the event store works (and is tested,
and benchmarked) on its own, and a checkpoint write never queues behind an app
transaction. WAL with synchronous=NORMAL survives a killed process; a power cut can at
worst drop the newest checkpoints, which only means redelivery, never loss.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    stream TEXT NOT NULL,
    grp TEXT NOT NULL,
    shard INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    PRIMARY KEY (stream, grp, shard)
) WITHOUT ROWID
"""


class CheckpointTable:
    """Where each consumer group has got to, per shard. Checkpoints only move forward."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        # Autocommit: each statement is its own transaction, which is all a checkpoint needs.
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(_SCHEMA)
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("checkpoint table not open")
        return self._db

    def get(self, stream: str, group: str, shard: int) -> int | None:
        row = self.db.execute(
            "SELECT sequence FROM checkpoints WHERE stream = ? AND grp = ? AND shard = ?",
            (stream, group, shard),
        ).fetchone()
        return None if row is None else int(row[0])

    def set(self, stream: str, group: str, shard: int, sequence: int) -> None:
        self.db.execute(
            "INSERT INTO checkpoints (stream, grp, shard, sequence) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (stream, grp, shard) DO UPDATE SET sequence = excluded.sequence "
            "WHERE excluded.sequence > checkpoints.sequence",
            (stream, group, shard, sequence),
        )

    def for_group(self, stream: str, group: str) -> dict[int, int]:
        rows = self.db.execute(
            "SELECT shard, sequence FROM checkpoints WHERE stream = ? AND grp = ?",
            (stream, group),
        ).fetchall()
        return {int(shard): int(sequence) for shard, sequence in rows}

    def delete_stream(self, stream: str) -> None:
        self.db.execute("DELETE FROM checkpoints WHERE stream = ?", (stream,))
