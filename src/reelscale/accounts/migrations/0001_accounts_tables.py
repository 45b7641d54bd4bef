"""accounts tables

Revision ID: b5e2ece9cceb
Revises:
Create Date: 2026-11-21 04:33:04.797499
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b5e2ece9cceb"
down_revision = None
branch_labels = ("accounts",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts_failed_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_failed_attempts")),
    )
    with op.batch_alter_table("accounts_failed_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_failed_attempts_at"), ["at"], unique=False)
        batch_op.create_index("ix_accounts_failed_attempts_key_at", ["key", "at"], unique=False)

    op.create_table(
        "accounts_members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("plan", sa.String(length=16), nullable=False),
        sa.Column("profile_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_members")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_members_email")),
    )
    op.create_table(
        "accounts_signing_keys",
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_accounts_signing_keys")),
    )
    op.create_table(
        "accounts_profiles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("is_kids", sa.Boolean(), nullable=False),
        sa.Column("max_maturity", sa.Integer(), nullable=False),
        sa.Column("pin_hash", sa.String(length=255), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("avatar", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["accounts_members.id"],
            name=op.f("fk_accounts_profiles_member_id_accounts_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_profiles")),
        sa.UniqueConstraint("member_id", "name", name=op.f("uq_accounts_profiles_member_id")),
    )
    with op.batch_alter_table("accounts_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_accounts_profiles_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "accounts_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=True),
        sa.Column("scope", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["accounts_members.id"],
            name=op.f("fk_accounts_sessions_member_id_accounts_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_sessions")),
    )
    with op.batch_alter_table("accounts_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_accounts_sessions_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "accounts_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["accounts_sessions.id"],
            name=op.f("fk_accounts_refresh_tokens_session_id_accounts_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_accounts_refresh_tokens")),
    )
    with op.batch_alter_table("accounts_refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_accounts_refresh_tokens_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts_refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_refresh_tokens_session_id"))

    op.drop_table("accounts_refresh_tokens")
    with op.batch_alter_table("accounts_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_sessions_member_id"))

    op.drop_table("accounts_sessions")
    with op.batch_alter_table("accounts_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_profiles_member_id"))

    op.drop_table("accounts_profiles")
    op.drop_table("accounts_signing_keys")
    op.drop_table("accounts_members")
    with op.batch_alter_table("accounts_failed_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_failed_attempts_key_at")
        batch_op.drop_index(batch_op.f("ix_accounts_failed_attempts_at"))

    op.drop_table("accounts_failed_attempts")
