"""contract timeline and files, proposed milestones, payout methods

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contract_activity",
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("milestone_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_contract_activity_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_contract_activity_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["milestone_id"], ["milestones.id"], name=op.f("fk_contract_activity_milestone_id_milestones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_activity")),
    )
    op.create_index(
        "ix_contract_activity_contract_id_created_at", "contract_activity", ["contract_id", "created_at"]
    )
    op.create_table(
        "contract_files",
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("activity_id", sa.Uuid(), nullable=True),
        sa.Column("uploader_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"], ["contract_activity.id"], name=op.f("fk_contract_files_activity_id_contract_activity"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_contract_files_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["uploader_id"], ["users.id"], name=op.f("fk_contract_files_uploader_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_files")),
    )
    op.create_index(op.f("ix_contract_files_contract_id"), "contract_files", ["contract_id"])
    op.create_index(op.f("ix_contract_files_activity_id"), "contract_files", ["activity_id"])
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposed_by", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_milestones_proposed_by_users"), "users", ["proposed_by"], ["id"])
    op.create_table(
        "payout_methods",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("gateway", sa.String(length=40), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_payout_methods_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_methods")),
    )
    op.create_index(op.f("ix_payout_methods_user_id"), "payout_methods", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_payout_methods_user_id"), table_name="payout_methods")
    op.drop_table("payout_methods")
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_milestones_proposed_by_users"), type_="foreignkey")
        batch_op.drop_column("proposed_by")
    op.drop_index(op.f("ix_contract_files_activity_id"), table_name="contract_files")
    op.drop_index(op.f("ix_contract_files_contract_id"), table_name="contract_files")
    op.drop_table("contract_files")
    op.drop_index("ix_contract_activity_contract_id_created_at", table_name="contract_activity")
    op.drop_table("contract_activity")
