"""Alembic environment: runs on a connection the platform hands it, never on its own."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("reelscale migrations run through `reelscale db upgrade` or on start")

context.configure(
    connection=connection,
    target_metadata=config.attributes["metadata"],
    version_table=config.attributes["version_table"],
    include_name=config.attributes["include_name"],
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
