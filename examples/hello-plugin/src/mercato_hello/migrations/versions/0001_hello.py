"""hello: greetings and replies (root of the `hello` branch)

Revision ID: hello_0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "hello_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("hello",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hello_greetings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hello_greetings")),
    )
    op.create_table(
        "hello_replies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("greeting_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["greeting_id"], ["hello_greetings.id"],
            name=op.f("fk_hello_replies_greeting_id_hello_greetings"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hello_replies")),
    )
    op.create_index(op.f("ix_hello_replies_greeting_id"), "hello_replies", ["greeting_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_hello_replies_greeting_id"), table_name="hello_replies")
    op.drop_table("hello_replies")
    op.drop_table("hello_greetings")
