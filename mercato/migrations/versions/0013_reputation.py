"""reputation: published ratings and each person's figures per role

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reputation_ratings",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("ratings", sa.JSON(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["users.id"], name=op.f("fk_reputation_ratings_subject_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_reputation_ratings")),
    )
    op.create_index(op.f("ix_reputation_ratings_subject_id"), "reputation_ratings", ["subject_id"])
    op.create_table(
        "reputations",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("rating_count", sa.Integer(), nullable=False),
        sa.Column("rating_avg", sa.Float(), nullable=True),
        sa.Column("sub_ratings", sa.JSON(), nullable=False),
        sa.Column("contracts_ended", sa.Integer(), nullable=False),
        sa.Column("contracts_successful", sa.Integer(), nullable=False),
        sa.Column("job_success", sa.SmallInteger(), nullable=True),
        sa.Column("milestones_due", sa.Integer(), nullable=False),
        sa.Column("milestones_on_time", sa.Integer(), nullable=False),
        sa.Column("on_time_rate", sa.SmallInteger(), nullable=True),
        sa.Column("counterparts", sa.Integer(), nullable=False),
        sa.Column("repeat_counterparts", sa.Integer(), nullable=False),
        sa.Column("repeat_rate", sa.SmallInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_reputations_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_reputations")),
    )
    op.create_index(op.f("ix_reputations_rating_avg"), "reputations", ["rating_avg"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reputations_rating_avg"), table_name="reputations")
    op.drop_table("reputations")
    op.drop_index(op.f("ix_reputation_ratings_subject_id"), table_name="reputation_ratings")
    op.drop_table("reputation_ratings")
