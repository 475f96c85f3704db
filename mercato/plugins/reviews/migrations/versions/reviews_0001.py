"""reviews: contract parties' reviews of each other (root of the `reviews` branch)

Revision ID: reviews_0001
Revises:
Create Date: 2026-12-02

The branch depends on the core revision current when reviews were added.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "reviews_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("reviews",)
depends_on: str | Sequence[str] | None = "0011"


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("subject_role", sa.String(length=10), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("ratings", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_reviews_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_reviews_author_id_users")),
        sa.ForeignKeyConstraint(["subject_id"], ["users.id"], name=op.f("fk_reviews_subject_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("contract_id", "author_id", name=op.f("uq_reviews_contract_id")),
    )
    op.create_index(op.f("ix_reviews_contract_id"), "reviews", ["contract_id"])
    op.create_index("ix_reviews_subject_id_published_at", "reviews", ["subject_id", "published_at"])


def downgrade() -> None:
    op.drop_index("ix_reviews_subject_id_published_at", table_name="reviews")
    op.drop_index(op.f("ix_reviews_contract_id"), table_name="reviews")
    op.drop_table("reviews")
