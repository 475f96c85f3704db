"""Service listings, their packages and add-ons, and the orders placed on them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from mercato.core.db import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, utcnow
from mercato.core.markdown import render_markdown


class ListingStatus(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    """Waiting for an admin (only when ``moderation.require_listing_approval`` is on)."""
    PUBLISHED = "published"
    PAUSED = "paused"
    ARCHIVED = "archived"


LISTING_TRANSITIONS: dict[str, frozenset[str]] = {
    ListingStatus.DRAFT: frozenset({ListingStatus.PUBLISHED, ListingStatus.PENDING_APPROVAL,
                                    ListingStatus.ARCHIVED}),
    ListingStatus.PENDING_APPROVAL: frozenset({ListingStatus.PUBLISHED, ListingStatus.DRAFT,
                                               ListingStatus.ARCHIVED}),
    ListingStatus.PUBLISHED: frozenset({ListingStatus.PAUSED, ListingStatus.ARCHIVED}),
    ListingStatus.PAUSED: frozenset({ListingStatus.PUBLISHED, ListingStatus.ARCHIVED}),
    ListingStatus.ARCHIVED: frozenset(),
}
"""draft → published ⇄ paused → archived; a draft may be archived too; archived is final.
With listing approval on, draft → pending_approval → published (approved) or draft (rejected)."""


class PackageTier(StrEnum):
    BASIC = "basic"
    STANDARD = "standard"
    PREMIUM = "premium"


TIER_ORDER = {PackageTier.BASIC: 0, PackageTier.STANDARD: 1, PackageTier.PREMIUM: 2}


class AddonKind(StrEnum):
    EXTRA_FAST = "extra_fast"
    """Delivers ``delivery_days_saved`` days sooner."""
    EXTRA_REVISION = "extra_revision"
    """Adds ``extra_revisions`` revisions."""
    CUSTOM = "custom"
    """Anything else, described by its title."""


UNLIMITED_REVISIONS = -1


class Listing(UUIDPrimaryKey, Timestamps, Base):
    """A service a developer offers at fixed prices (one to three packages)."""

    __tablename__ = "listings"
    __table_args__ = (Index("ix_listings_status_published_at", "status", "published_at"),)

    developer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    """Markdown; rendered sanitised."""
    description_html: Mapped[str | None] = mapped_column(Text)
    """``description`` rendered, kept with it (set whenever it is; lists show many)."""

    @validates("description")
    def _render_description(self, key: str, value: str) -> str:
        self.description_html = str(render_markdown(value))
        return value
    category_slug: Mapped[str] = mapped_column(ForeignKey("categories.slug"), index=True)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    gallery: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """``[{"key", "width", "height"}]``: stored images (see ``mercato.core.images``), in order."""
    faq: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    """``[{"question", "answer"}]``, at most 10."""
    requirements: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Questions the buyer answers when ordering, at most 5."""
    status: Mapped[str] = mapped_column(String(20), default=ListingStatus.DRAFT)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """The first publication (resuming a paused listing keeps it)."""
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """Set while moderators hide it: only its developer (and admins) still see it."""
    rejection_reason: Mapped[str | None] = mapped_column(Text, default=None)
    """Why an admin sent it back to draft instead of approving it."""


class ListingPackage(UUIDPrimaryKey, Timestamps, Base):
    """One of a listing's price points. One row per tier: editing a tier keeps its id."""

    __tablename__ = "listing_packages"
    __table_args__ = (UniqueConstraint("listing_id", "tier"),)
    """The unique index also serves lookups by listing."""

    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"))
    tier: Mapped[str] = mapped_column(String(10))
    """``basic``, ``standard`` or ``premium``."""
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[int] = mapped_column(Integer)
    """Minor units of ``currency``."""
    currency: Mapped[str] = mapped_column(String(3))
    """The same for every package and add-on of a listing."""
    delivery_days: Mapped[int] = mapped_column(Integer)
    """1-365."""
    revisions: Mapped[int] = mapped_column(Integer)
    """0-20, or -1 for unlimited."""
    features: Mapped[list[str]] = mapped_column(JSON, default=list)


class ListingAddon(UUIDPrimaryKey, Timestamps, Base):
    """An extra a buyer may add to any package (priced in the packages' currency)."""

    __tablename__ = "listing_addons"

    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20))
    """``extra_fast``, ``extra_revision`` or ``custom``."""
    title: Mapped[str] = mapped_column(String(100))
    price: Mapped[int] = mapped_column(Integer)
    delivery_days_saved: Mapped[int | None] = mapped_column(Integer, default=None)
    """``extra_fast`` only."""
    extra_revisions: Mapped[int | None] = mapped_column(Integer, default=None)
    """``extra_revision`` only."""


class ServiceOrder(UUIDPrimaryKey, Base):
    """A purchase of one package (plus add-ons); the work and money then live in the
    contract made from it. What was bought is kept as a snapshot: the listing may change."""

    __tablename__ = "service_orders"

    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"), index=True)
    package_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("listing_packages.id", ondelete="SET NULL"), default=None
    )
    """``None`` once the developer removed that tier; ``package`` still says what was bought."""
    package: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Snapshot: ``{"tier", "name", "price", "delivery_days", "revisions", "features"}``."""
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    developer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    addons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """Snapshot: ``[{"id", "kind", "title", "price", "delivery_days_saved", "extra_revisions"}]``."""
    requirements_answers: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    """``[{"question", "answer"}]`` in the listing's order."""
    total: Mapped[int] = mapped_column(Integer)
    """Minor units: the package plus the add-ons."""
    currency: Mapped[str] = mapped_column(String(3))
    delivery_days: Mapped[int] = mapped_column(Integer)
    """The package's, less what an ``extra_fast`` add-on saves (at least 1)."""
    revisions: Mapped[int] = mapped_column(Integer)
    """The package's plus extra revisions; -1: unlimited."""
    contract_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contracts.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


LISTING_MODELS: list[type[Base]] = [Listing, ListingPackage, ListingAddon, ServiceOrder]
