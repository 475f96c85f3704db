"""The services API's bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from mercato.core.reputation.schemas import ReputationOut

Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")]
Minor = Annotated[int, msgspec.Meta(ge=1, le=10_000_000_00, description="Minor units (cents).")]
Tier = Literal["basic", "standard", "premium"]
AddonKind = Literal["extra_fast", "extra_revision", "custom"]
Status = Literal["draft", "published", "paused", "archived"]
SkillSlug = Annotated[str, msgspec.Meta(max_length=64)]
Title = Annotated[str, msgspec.Meta(min_length=5, max_length=120)]
Description = Annotated[str, msgspec.Meta(min_length=20, max_length=20_000)]
Question = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Answer = Annotated[str, msgspec.Meta(max_length=3000)]
Feature = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
DeliveryDays = Annotated[int, msgspec.Meta(ge=1, le=365, description="Days from the order to delivery.")]
Revisions = Annotated[int, msgspec.Meta(ge=-1, le=20, description="0-20 revisions; -1 for unlimited.")]

MAX_PACKAGES = 3
MAX_ADDONS = 10
MAX_FAQ = 10
MAX_REQUIREMENTS = 5
MAX_GALLERY = 8


class PackageIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tier: Tier
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    description: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    price: Minor
    currency: Currency = "USD"
    """The same for every package of a listing."""
    delivery_days: DeliveryDays
    revisions: Revisions = 0
    features: Annotated[list[Feature], msgspec.Meta(max_length=10)] = msgspec.field(default_factory=list)


class AddonIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: uuid.UUID | None = None
    """An existing add-on of this listing to keep (and change); omit for a new one."""
    kind: AddonKind
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    price: Minor
    """In the packages' currency."""
    delivery_days_saved: Annotated[int, msgspec.Meta(ge=1, le=364)] | None = None
    """``extra_fast`` only: how many days sooner it delivers."""
    extra_revisions: Annotated[int, msgspec.Meta(ge=1, le=20)] | None = None
    """``extra_revision`` only."""


class FaqIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    answer: Annotated[str, msgspec.Meta(min_length=1, max_length=3000)]


Packages = Annotated[list[PackageIn], msgspec.Meta(max_length=MAX_PACKAGES)]
Addons = Annotated[list[AddonIn], msgspec.Meta(max_length=MAX_ADDONS)]
Faq = Annotated[list[FaqIn], msgspec.Meta(max_length=MAX_FAQ)]
Requirements = Annotated[list[Question], msgspec.Meta(max_length=MAX_REQUIREMENTS)]
Skills = Annotated[list[SkillSlug], msgspec.Meta(max_length=15)]


class ServiceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title
    description: Description
    """Markdown."""
    category: Annotated[str, msgspec.Meta(max_length=64)]
    skills: Skills = msgspec.field(default_factory=list)
    packages: Packages = msgspec.field(default_factory=list)
    """One to three, one per tier, all in one currency (a draft may have none yet)."""
    addons: Addons = msgspec.field(default_factory=list)
    faq: Faq = msgspec.field(default_factory=list)
    requirements: Requirements = msgspec.field(default_factory=list)
    """Questions the buyer answers when ordering."""
    publish: bool = False
    """Publish at once (false: keep it as a draft)."""


class ServiceUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Absent fields stay as they are; ``packages`` and ``addons`` replace the whole set
    (a package keeps its id while its tier stays; an add-on keeps it when sent with its id)."""

    title: Title | None = None
    description: Description | None = None
    category: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    skills: Skills | None = None
    packages: Packages | None = None
    addons: Addons | None = None
    faq: Faq | None = None
    requirements: Requirements | None = None
    gallery: (
        Annotated[list[Annotated[str, msgspec.Meta(max_length=200)]], msgspec.Meta(max_length=MAX_GALLERY)]
        | None
    ) = None
    """Keys of images already in the gallery, in the new order; missing ones are removed."""


class PackageOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    tier: str
    name: str
    description: str
    price: int
    currency: str
    delivery_days: int
    revisions: int
    """-1: unlimited."""
    features: list[str]


class AddonOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    title: str
    price: int
    currency: str | None
    """The packages' currency (``None`` while a draft has no package)."""
    delivery_days_saved: int | None
    extra_revisions: int | None


class FaqOut(msgspec.Struct, kw_only=True):
    question: str
    answer: str


class GalleryImage(msgspec.Struct, kw_only=True):
    key: str
    url: str
    width: int
    height: int


class ServiceOut(msgspec.Struct, kw_only=True, tag_field="kind", tag="service"):
    id: uuid.UUID
    developer_id: uuid.UUID
    developer_name: str
    title: str
    description: str
    description_html: str
    category: str
    skills: list[str]
    packages: list[PackageOut]
    """Basic, standard, premium (those that exist)."""
    addons: list[AddonOut]
    faq: list[FaqOut]
    requirements: list[str]
    gallery: list[GalleryImage]
    status: str
    currency: str | None
    price_from: int | None
    """The cheapest package (minor units)."""
    fastest_delivery_days: int | None
    order_count: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    is_owner: bool
    hidden: bool = False
    """Hidden by moderators: only its developer (and admins) see it."""
    rejection_reason: str | None = None
    """Why an admin sent it back to draft (shown to its developer)."""
    developer_reputation: ReputationOut | None = None
    """The developer's figures (null before their first contract)."""


class ServicePage(msgspec.Struct, kw_only=True):
    items: list[ServiceOut]
    next_cursor: str | None


class OrderIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    package: Tier
    addons: Annotated[list[uuid.UUID], msgspec.Meta(max_length=MAX_ADDONS)] = msgspec.field(
        default_factory=list
    )
    """Ids of this listing's add-ons, each at most once."""
    requirements: Annotated[list[Answer], msgspec.Meta(max_length=MAX_REQUIREMENTS)] = msgspec.field(
        default_factory=list
    )
    """One answer per requirement question, in order."""


class OrderOut(msgspec.Struct, kw_only=True):
    order_id: uuid.UUID
    contract_id: uuid.UUID
