"""accounts onboarding picks

Revision ID: 3c8d41f0a2b7
Revises: b5e2ece9cceb
Create Date: 2026-11-21 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3c8d41f0a2b7"
down_revision = "b5e2ece9cceb"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts_picked_genres",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["accounts_profiles.id"],
            name=op.f("fk_accounts_picked_genres_profile_id_accounts_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "position", name=op.f("pk_accounts_picked_genres")),
    )
    op.create_table(
        "accounts_picked_titles",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["accounts_profiles.id"],
            name=op.f("fk_accounts_picked_titles_profile_id_accounts_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "position", name=op.f("pk_accounts_picked_titles")),
    )


def downgrade() -> None:
    op.drop_table("accounts_picked_titles")
    op.drop_table("accounts_picked_genres")
