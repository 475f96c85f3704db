"""search_sql: the search index (root of the `search_sql` branch)

Revision ID: search_sql_0001
Revises:
Create Date: 2026-11-24

Creates ``search_documents`` on every database, then the full-text machinery of the one
in use: on PostgreSQL the ``pg_trgm`` extension (it ships with PostgreSQL) and GIN indexes
on the ``tsvector`` column and on ``title`` (trigrams); on SQLite the FTS5 table
``search_fts``. The GIN/trigram indexes are partial and empty on SQLite, the ``fts_rowid``
index on PostgreSQL, so the schema equals the models on both (see ``models.py``).

The branch depends on the core's first revision, so ``mercato db downgrade mercato@base``
removes the index too; ``search_sql@base`` removes only it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "search_sql_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("search_sql",)
depends_on: str | Sequence[str] | None = "0001"

FTS5_TABLE = (
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "title, skills, text, prefix='2 3', tokenize='unicode61 remove_diacritics 2')"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "search_documents",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("skills_text", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("price_min", sa.BigInteger(), nullable=True),
        sa.Column("price_max", sa.BigInteger(), nullable=True),
        sa.Column("hourly", sa.Boolean(), nullable=False),
        sa.Column("delivery_days", sa.Integer(), nullable=True),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("fts_rowid", sa.Integer(), nullable=True),
        sa.Column("tsv", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql"), nullable=True),
        sa.PrimaryKeyConstraint("kind", "id", name=op.f("pk_search_documents")),
    )
    op.create_index("ix_search_documents_kind_created_at", "search_documents", ["kind", "created_at"])
    op.create_index("ix_search_documents_tsv", "search_documents", ["tsv"], postgresql_using="gin",
                    sqlite_where=sa.text("tsv IS NOT NULL"))
    op.create_index("ix_search_documents_title_trgm", "search_documents", ["title"],
                    postgresql_using="gin", postgresql_ops={"title": "gin_trgm_ops"},
                    sqlite_where=sa.text("tsv IS NOT NULL"))
    op.create_index("ix_search_documents_fts_rowid", "search_documents", ["fts_rowid"], unique=True,
                    postgresql_where=sa.text("fts_rowid IS NOT NULL"))
    if dialect == "sqlite":
        op.execute(FTS5_TABLE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_index("ix_search_documents_fts_rowid", table_name="search_documents")
    op.drop_index("ix_search_documents_title_trgm", table_name="search_documents")
    op.drop_index("ix_search_documents_tsv", table_name="search_documents")
    op.drop_index("ix_search_documents_kind_created_at", table_name="search_documents")
    op.drop_table("search_documents")
    # pg_trgm stays: other tables may use it, and dropping an extension needs more rights.
