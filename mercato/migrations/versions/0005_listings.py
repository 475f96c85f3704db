"""listings: services, packages, add-ons, orders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 20:57:03.021947
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "listings",
        sa.Column("developer_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category_slug", sa.String(length=64), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("gallery", sa.JSON(), nullable=False),
        sa.Column("faq", sa.JSON(), nullable=False),
        sa.Column("requirements", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_slug"], ["categories.slug"], name=op.f("fk_listings_category_slug_categories")
        ),
        sa.ForeignKeyConstraint(["developer_id"], ["users.id"], name=op.f("fk_listings_developer_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listings")),
    )
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_listings_category_slug"), ["category_slug"], unique=False)
        batch_op.create_index(batch_op.f("ix_listings_developer_id"), ["developer_id"], unique=False)
        batch_op.create_index("ix_listings_status_published_at", ["status", "published_at"], unique=False)

    op.create_table(
        "listing_addons",
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("delivery_days_saved", sa.Integer(), nullable=True),
        sa.Column("extra_revisions", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_listing_addons_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_addons")),
    )
    with op.batch_alter_table("listing_addons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_listing_addons_listing_id"), ["listing_id"], unique=False)

    op.create_table(
        "listing_packages",
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("tier", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("delivery_days", sa.Integer(), nullable=False),
        sa.Column("revisions", sa.Integer(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_listing_packages_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_packages")),
        sa.UniqueConstraint("listing_id", "tier", name=op.f("uq_listing_packages_listing_id")),
    )
    op.create_table(
        "service_orders",
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("package_id", sa.Uuid(), nullable=True),
        sa.Column("package", sa.JSON(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("developer_id", sa.Uuid(), nullable=False),
        sa.Column("addons", sa.JSON(), nullable=False),
        sa.Column("requirements_answers", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("delivery_days", sa.Integer(), nullable=False),
        sa.Column("revisions", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["users.id"], name=op.f("fk_service_orders_client_id_users")),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_service_orders_contract_id_contracts")
        ),
        sa.ForeignKeyConstraint(
            ["developer_id"], ["users.id"], name=op.f("fk_service_orders_developer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listings.id"], name=op.f("fk_service_orders_listing_id_listings")
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["listing_packages.id"],
            name=op.f("fk_service_orders_package_id_listing_packages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_orders")),
        sa.UniqueConstraint("contract_id", name=op.f("uq_service_orders_contract_id")),
    )
    with op.batch_alter_table("service_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_orders_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_orders_developer_id"), ["developer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_orders_listing_id"), ["listing_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("service_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_orders_listing_id"))
        batch_op.drop_index(batch_op.f("ix_service_orders_developer_id"))
        batch_op.drop_index(batch_op.f("ix_service_orders_client_id"))

    op.drop_table("service_orders")
    op.drop_table("listing_packages")
    with op.batch_alter_table("listing_addons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_listing_addons_listing_id"))

    op.drop_table("listing_addons")
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.drop_index("ix_listings_status_published_at")
        batch_op.drop_index(batch_op.f("ix_listings_developer_id"))
        batch_op.drop_index(batch_op.f("ix_listings_category_slug"))

    op.drop_table("listings")
