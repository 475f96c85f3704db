"""rendered descriptions: projects and listings keep their Markdown rendered

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 23:55:00.000000

Search results and lists show twenty descriptions at a time; rendering and sanitising each
on every read was most of what a search request spent outside the database. Existing rows
are rendered here, in batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("projects", "listings")
BATCH = 500


def upgrade() -> None:
    from mercato.core.markdown import render_markdown

    connection = op.get_bind()
    for name in TABLES:
        op.add_column(name, sa.Column("description_html", sa.Text(), nullable=True))
        table = sa.table(name, sa.column("id", sa.Uuid()), sa.column("description", sa.Text()),
                         sa.column("description_html", sa.Text()))
        last = None
        while True:
            query = sa.select(table.c.id, table.c.description).order_by(table.c.id).limit(BATCH)
            if last is not None:
                query = query.where(table.c.id > last)
            rows = connection.execute(query).all()
            if not rows:
                break
            connection.execute(
                table.update().where(table.c.id == sa.bindparam("row_id")),
                [{"row_id": row.id, "description_html": str(render_markdown(row.description))} for row in rows],
            )
            last = rows[-1].id


def downgrade() -> None:
    for name in TABLES:
        op.drop_column(name, "description_html")
