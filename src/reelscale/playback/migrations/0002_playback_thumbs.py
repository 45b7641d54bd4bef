"""playback thumbs

Revision ID: 567d1ea8f202
Revises: 18f9ab162645
Create Date: 2026-11-21 06:44:43.446578
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "567d1ea8f202"
down_revision = "18f9ab162645"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "playback_thumbs",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.Column("thumb", sa.SmallInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "title_id", name=op.f("pk_playback_thumbs")),
    )


def downgrade() -> None:
    op.drop_table("playback_thumbs")
