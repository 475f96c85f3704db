"""sandbox_payments: bank accounts registered for payouts

Revision ID: sandbox_payments_0002
Revises: sandbox_payments_0001
Create Date: 2026-11-25

The sandbox keeps the account numbers, as a processor does; mercato's ``payout_methods`` keeps
only the token this table hands out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sandbox_payments_0002"
down_revision: str | Sequence[str] | None = "sandbox_payments_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_payout_accounts",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("account_number", sa.String(length=34), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_payout_accounts")),
        sa.UniqueConstraint("reference", name=op.f("uq_sandbox_payout_accounts_reference")),
        sa.UniqueConstraint("token", name=op.f("uq_sandbox_payout_accounts_token")),
    )


def downgrade() -> None:
    op.drop_table("sandbox_payout_accounts")
