"""Service listings and orders as a built-in plugin."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mercato import hookimpl
from mercato.core.listings.models import LISTING_MODELS, Listing
from mercato.core.listings.pages import PAGE_ROUTES
from mercato.core.listings.routes import API_CONTROLLERS
from mercato.core.listings.services import ListingService
from mercato.core.moderation.subjects import ReportedItem, ReportSubject, excerpt
from mercato.core.site import Site

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(LISTING_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [*API_CONTROLLERS, *PAGE_ROUTES]


@hookimpl
def register_report_subjects(site: Site) -> list[ReportSubject]:
    """``listing``: a service listing; hiding it takes it off public pages and search."""
    service = ListingService(site)

    async def describe(session: AsyncSession, listing_id: uuid.UUID, viewer_id: uuid.UUID | None
                       ) -> ReportedItem | None:
        listing = await session.get(Listing, listing_id)
        if listing is None:
            return None
        if viewer_id is not None and not await service.can_view(session, listing, viewer_id):
            return None
        return ReportedItem(owner_id=listing.developer_id, title=listing.title,
                            excerpt=excerpt(listing.description),
                            url=f"/services/{listing.id}", hidden=listing.hidden_at is not None)

    async def hide(session: AsyncSession, listing_id: uuid.UUID, hidden: bool) -> None:
        listing = await session.get(Listing, listing_id)
        if listing is not None:
            await service.set_hidden(session, listing, hidden)

    return [ReportSubject(kind="listing", label="a service", describe=describe, hide=hide)]
