"""sandbox_payments: the sandbox processor's operations (root of the `sandbox_payments` branch)

Revision ID: sandbox_payments_0001
Revises:
Create Date: 2026-11-25

The branch depends on the core's first revision, so ``mercato db downgrade mercato@base``
removes this table too; ``sandbox_payments@base`` removes only it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sandbox_payments_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sandbox_payments",)
depends_on: str | Sequence[str] | None = "0001"


def upgrade() -> None:
    op.create_table(
        "sandbox_operations",
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_operations")),
        sa.UniqueConstraint("reference", name=op.f("uq_sandbox_operations_reference")),
    )


def downgrade() -> None:
    op.drop_table("sandbox_operations")
