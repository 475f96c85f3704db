"""search_sql: documents no longer keep their body text

Revision ID: search_sql_0003
Revises: search_sql_0002
Create Date: 2026-11-25

Nothing read ``search_documents.text``: the words are in ``tsv`` (PostgreSQL) or the FTS5
table (SQLite). It was a third of each row, so a search touching thousands of matches read a
third more pages than it needed. The downgrade brings the column back empty; ``mercato search
reindex`` fills it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "search_sql_0003"
down_revision: str | Sequence[str] | None = "search_sql_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.drop_column("text")


def downgrade() -> None:
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text", sa.Text(), nullable=False, server_default=""))
