"""catalog tables

Revision ID: 21a69609043c
Revises:
Create Date: 2026-11-21 04:48:32.124290
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "21a69609043c"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_genres",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_genres")),
        sa.UniqueConstraint("slug", name=op.f("uq_catalog_genres_slug")),
    )
    op.create_table(
        "catalog_people",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_people")),
        sa.UniqueConstraint("name", name=op.f("uq_catalog_people_name")),
    )
    op.create_table(
        "catalog_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_revision")),
    )
    # The one row every catalog write bumps (see catalog.search).
    op.bulk_insert(
        sa.table("catalog_revision", sa.column("id", sa.Integer), sa.column("value", sa.Integer)),
        [{"id": 1, "value": 0}],
    )
    op.create_table(
        "catalog_titles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("synopsis", sa.Text(), nullable=False),
        sa.Column("release_year", sa.Integer(), nullable=False),
        sa.Column("maturity_rating", sa.String(length=8), nullable=False),
        sa.Column("maturity_level", sa.Integer(), nullable=False),
        sa.Column("original_language", sa.String(length=16), nullable=False),
        sa.Column("runtime_minutes", sa.Integer(), nullable=True),
        sa.Column("popularity", sa.Float(), nullable=False),
        sa.Column("available_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("available_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_titles")),
    )
    with op.batch_alter_table("catalog_titles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_titles_kind"), ["kind"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_catalog_titles_maturity_level"), ["maturity_level"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_catalog_titles_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_catalog_titles_popularity"), ["popularity"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_catalog_titles_release_year"), ["release_year"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_catalog_titles_updated_at"), ["updated_at"], unique=False
        )

    op.create_table(
        "catalog_artwork",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["title_id"],
            ["catalog_titles.id"],
            name=op.f("fk_catalog_artwork_title_id_catalog_titles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_artwork")),
    )
    with op.batch_alter_table("catalog_artwork", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_artwork_title_id"), ["title_id"], unique=False)

    op.create_table(
        "catalog_credits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("character", sa.String(length=120), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["catalog_people.id"],
            name=op.f("fk_catalog_credits_person_id_catalog_people"),
        ),
        sa.ForeignKeyConstraint(
            ["title_id"],
            ["catalog_titles.id"],
            name=op.f("fk_catalog_credits_title_id_catalog_titles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_credits")),
    )
    with op.batch_alter_table("catalog_credits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalog_credits_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_catalog_credits_title_id"), ["title_id"], unique=False)

    op.create_table(
        "catalog_seasons",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("synopsis", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["title_id"],
            ["catalog_titles.id"],
            name=op.f("fk_catalog_seasons_title_id_catalog_titles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_seasons")),
        sa.UniqueConstraint("title_id", "number", name=op.f("uq_catalog_seasons_title_id")),
    )
    with op.batch_alter_table("catalog_seasons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_seasons_title_id"), ["title_id"], unique=False)

    op.create_table(
        "catalog_title_genres",
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.Column("genre_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["genre_id"],
            ["catalog_genres.id"],
            name=op.f("fk_catalog_title_genres_genre_id_catalog_genres"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["title_id"],
            ["catalog_titles.id"],
            name=op.f("fk_catalog_title_genres_title_id_catalog_titles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("title_id", "genre_id", name=op.f("pk_catalog_title_genres")),
    )
    op.create_table(
        "catalog_title_languages",
        sa.Column("title_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["title_id"],
            ["catalog_titles.id"],
            name=op.f("fk_catalog_title_languages_title_id_catalog_titles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "title_id", "kind", "language", name=op.f("pk_catalog_title_languages")
        ),
    )
    op.create_table(
        "catalog_episodes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("season_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("synopsis", sa.Text(), nullable=False),
        sa.Column("runtime_minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["season_id"],
            ["catalog_seasons.id"],
            name=op.f("fk_catalog_episodes_season_id_catalog_seasons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_episodes")),
        sa.UniqueConstraint("season_id", "number", name=op.f("uq_catalog_episodes_season_id")),
    )
    with op.batch_alter_table("catalog_episodes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalog_episodes_season_id"), ["season_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("catalog_episodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_episodes_season_id"))

    op.drop_table("catalog_episodes")
    op.drop_table("catalog_title_languages")
    op.drop_table("catalog_title_genres")
    with op.batch_alter_table("catalog_seasons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_seasons_title_id"))

    op.drop_table("catalog_seasons")
    with op.batch_alter_table("catalog_credits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_credits_title_id"))
        batch_op.drop_index(batch_op.f("ix_catalog_credits_person_id"))

    op.drop_table("catalog_credits")
    with op.batch_alter_table("catalog_artwork", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_artwork_title_id"))

    op.drop_table("catalog_artwork")
    with op.batch_alter_table("catalog_titles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_titles_updated_at"))
        batch_op.drop_index(batch_op.f("ix_catalog_titles_release_year"))
        batch_op.drop_index(batch_op.f("ix_catalog_titles_popularity"))
        batch_op.drop_index(batch_op.f("ix_catalog_titles_name"))
        batch_op.drop_index(batch_op.f("ix_catalog_titles_maturity_level"))
        batch_op.drop_index(batch_op.f("ix_catalog_titles_kind"))

    op.drop_table("catalog_titles")
    op.drop_table("catalog_revision")
    op.drop_table("catalog_people")
    op.drop_table("catalog_genres")
