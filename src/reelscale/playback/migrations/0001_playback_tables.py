"""playback tables

Revision ID: 18f9ab162645
Revises:
Create Date: 2026-11-21 05:08:48.926567
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "18f9ab162645"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "playback_progress",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.Column("position_s", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("watched", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "title_id", name=op.f("pk_playback_progress")),
    )
    with op.batch_alter_table("playback_progress", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_playback_progress_updated_at"), ["updated_at"], unique=False
        )

    op.create_table(
        "playback_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("position_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playback_sessions")),
    )
    with op.batch_alter_table("playback_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_playback_sessions_member_live", ["member_id", "ended_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("playback_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_playback_sessions_member_live")

    op.drop_table("playback_sessions")
    with op.batch_alter_table("playback_progress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_playback_progress_updated_at"))

    op.drop_table("playback_progress")
