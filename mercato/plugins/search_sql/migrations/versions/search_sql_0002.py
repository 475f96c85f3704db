"""search_sql: indexes for the skill and category filters

Revision ID: search_sql_0002
Revises: search_sql_0001
Create Date: 2026-11-24

At 100,000 projects a search with a skill and a category filter spent most of its time
rechecking rows the text index found, because neither filter had an index. On PostgreSQL
``skills`` becomes ``text[]`` with a GIN index (``skills @> ARRAY[...]``); on every database
``(kind, category)`` gets a btree index. The skills index is partial and empty on SQLite,
where ``skills`` stays JSON, so the schema equals the models on both.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "search_sql_0002"
down_revision: str | Sequence[str] | None = "search_sql_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # ALTER COLUMN ... USING takes no subquery: copy into a new column instead.
        op.execute("ALTER TABLE search_documents ADD COLUMN skills_array text[]")
        op.execute(
            "UPDATE search_documents SET skills_array = ARRAY(SELECT json_array_elements_text(skills))"
        )
        op.execute("ALTER TABLE search_documents DROP COLUMN skills")
        op.execute("ALTER TABLE search_documents RENAME COLUMN skills_array TO skills")
        op.execute("ALTER TABLE search_documents ALTER COLUMN skills SET NOT NULL")
    op.create_index("ix_search_documents_kind_category", "search_documents", ["kind", "category"])
    op.create_index("ix_search_documents_skills", "search_documents", ["skills"], postgresql_using="gin",
                    sqlite_where=sa.text("tsv IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_search_documents_skills", table_name="search_documents")
    op.drop_index("ix_search_documents_kind_category", table_name="search_documents")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE search_documents ALTER COLUMN skills TYPE json USING array_to_json(skills)"
        )
