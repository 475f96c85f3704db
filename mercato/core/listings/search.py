"""Services as search documents: only published services of active developers, not hidden by
moderators, can be found."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Select, select

from mercato.core.accounts.models import Skill, User, UserStatus
from mercato.core.listings.models import Listing, ListingPackage, ListingStatus
from mercato.core.reputation.models import reputation_of
from mercato.core.search import SearchDocument

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

SERVICE_EVENTS = ("service.published", "service.updated", "service.paused", "service.archived")
"""Events after which a service's document is rebuilt (or removed when no longer findable)."""


def service_ids() -> Select[uuid.UUID]:
    """A query for the id of every findable service, oldest first."""
    return (
        select(Listing.id)
        .join(User, User.id == Listing.developer_id)
        .where(Listing.status == ListingStatus.PUBLISHED, Listing.hidden_at.is_(None),
               User.status == UserStatus.ACTIVE)
        .order_by(Listing.created_at, Listing.id)
    )


async def all_service_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every findable service (for a full reindex)."""
    return list((await session.execute(service_ids())).scalars())


async def service_documents(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[SearchDocument]:
    """Documents for the findable services among ``ids`` (the others should be removed).

    Title: the listing's title; text: description, package names, descriptions and features,
    and skill names; price: the cheapest and the dearest package; delivery: the fastest."""
    if not ids:
        return []
    listings = list(
        (
            await session.execute(
                select(Listing)
                .join(User, User.id == Listing.developer_id)
                .where(
                    Listing.id.in_(list(ids)),
                    Listing.status == ListingStatus.PUBLISHED,
                    Listing.hidden_at.is_(None),
                    User.status == UserStatus.ACTIVE,
                )
            )
        ).scalars()
    )
    if not listings:
        return []
    packages: dict[uuid.UUID, list[ListingPackage]] = {listing.id: [] for listing in listings}
    rows = await session.execute(select(ListingPackage).where(ListingPackage.listing_id.in_(list(packages))))
    for package in rows.scalars():
        packages[package.listing_id].append(package)
    slugs = {slug for listing in listings for slug in listing.skills}
    names = (
        dict((await session.execute(select(Skill.slug, Skill.name).where(Skill.slug.in_(slugs)))).all())
        if slugs
        else {}
    )
    reputations = await reputation_of(session, {listing.developer_id for listing in listings})
    documents = []
    for listing in listings:
        own = packages[listing.id]
        reputation = reputations.get(listing.developer_id)
        package_text = [
            " ".join(part for part in (p.name, p.description, " ".join(p.features)) if part) for p in own
        ]
        documents.append(
            SearchDocument(
                kind="service",
                id=listing.id,
                title=listing.title,
                text="\n".join(
                    part
                    for part in (
                        listing.description,
                        *package_text,
                        " ".join(names.get(s, s) for s in listing.skills),
                    )
                    if part
                ),
                skills=list(listing.skills),
                category=listing.category_slug,
                currency=own[0].currency if own else None,
                price_min=min((p.price for p in own), default=None),
                price_max=max((p.price for p in own), default=None),
                delivery_days=min((p.delivery_days for p in own), default=None),
                rating=reputation.rating_avg if reputation else None,
                created_at=listing.published_at or listing.created_at,
                owner_id=listing.developer_id,
            )
        )
    return documents
