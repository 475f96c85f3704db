"""semantic_recommendations: stored embeddings (root of the `semantic_recommendations` branch)

Revision ID: semantic_recommendations_0001
Revises:
Create Date: 2026-12-02

Empty at first: the plugin's event handlers fill it, or `mercato semantic embed` at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "semantic_recommendations_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("semantic_recommendations",)
depends_on: str | Sequence[str] | None = "0011"


def upgrade() -> None:
    op.create_table(
        "semantic_embeddings",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "item_id", name=op.f("pk_semantic_embeddings")),
    )


def downgrade() -> None:
    op.drop_table("semantic_embeddings")
