"""recommendations: the skill index of open projects and published services (root of the
`recommendations` branch)

Revision ID: recommendations_0001
Revises:
Create Date: 2026-12-02

Filled here from the projects and services that exist, so a site turning the plugin on gets
recommendations at once; event handlers keep it current from then on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "recommendations_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("recommendations",)
depends_on: str | Sequence[str] | None = "0011"

BATCH = 5_000


def upgrade() -> None:
    postings = op.create_table(
        "recommendation_skills",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("skill_slug", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "item_id", "skill_slug", name=op.f("pk_recommendation_skills")),
    )
    op.create_index(
        "ix_recommendation_skills_lookup", "recommendation_skills", ["kind", "skill_slug", "published_at"]
    )

    def columns() -> list[sa.ColumnClause[object]]:
        return [
            sa.column("id", sa.Uuid()),
            sa.column("skills", sa.JSON()),
            sa.column("published_at", sa.DateTime(timezone=True)),
            sa.column("status", sa.String()),
        ]

    projects = sa.table("projects", *columns(), sa.column("visibility", sa.String()))
    listings = sa.table("listings", *columns())
    bind = op.get_bind()
    for kind, source, where in (
        ("project", projects, sa.and_(projects.c.status == "open", projects.c.visibility == "public")),
        ("service", listings, listings.c.status == "published"),
    ):
        rows: list[dict[str, object]] = []
        query = sa.select(source.c.id, source.c.skills, source.c.published_at).where(
            where, source.c.published_at.is_not(None)
        )
        for item_id, skills, published_at in bind.execute(query).all():
            rows += [
                {"kind": kind, "item_id": item_id, "skill_slug": slug, "published_at": published_at}
                for slug in dict.fromkeys(skills or [])
            ]
            if len(rows) >= BATCH:
                bind.execute(sa.insert(postings), rows)
                rows = []
        if rows:
            bind.execute(sa.insert(postings), rows)


def downgrade() -> None:
    op.drop_index("ix_recommendation_skills_lookup", table_name="recommendation_skills")
    op.drop_table("recommendation_skills")
