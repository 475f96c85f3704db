"""Event handlers that keep search documents current.

Every event only says *which* documents may have changed; the handler rebuilds them from
the rows as they are now (or removes them when they should no longer be findable). So the
order events arrive in does not matter: ``user.deleted`` handled before an older
``user.profile_updated`` still ends with the developer gone.

Writes go through whichever backend answers ``get_search_backend``. The built-in SQL
backend is handed the handler's ``session``: the index changes commit together with the
processed-event marker (exactly once). Another backend is called plainly (at least once;
``index``/``remove`` are idempotent).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from mercato.core.accounts import events as account_events
from mercato.core.events import Event, EventHandler
from mercato.core.listings.models import Listing, ListingStatus
from mercato.core.listings.search import SERVICE_EVENTS
from mercato.core.projects.search import PROJECT_EVENTS
from mercato.core.reputation.events import ReputationChanged

from .backend import SqlSearchBackend
from .documents import build_documents

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.search import Kind
    from mercato.core.site import Site

DEVELOPER_EVENTS = (
    account_events.UserRegistered.event_type,
    account_events.ProfileUpdated.event_type,
    account_events.UserReinstated.event_type,
    account_events.UserSuspended.event_type,
    account_events.UserDeleted.event_type,
)


async def lock_for_rebuild(session: AsyncSession, kind: Kind, ids: list[uuid.UUID]) -> None:
    """Rebuild these documents one transaction at a time (PostgreSQL advisory locks held
    until commit), so a slow rebuild from older rows cannot overwrite a newer one. SQLite
    write transactions are serial already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for doc_id in sorted(set(ids)):
        digest = hashlib.blake2b(f"search:{kind}:{doc_id}".encode(), digest_size=8).digest()
        await session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True))))


async def refresh_documents(site: Site, session: AsyncSession, kind: Kind, ids: list[uuid.UUID]) -> None:
    """Re-index those of ``ids`` that are findable and remove the others, within
    ``session``'s transaction where the backend supports it."""
    if not ids:
        return
    await lock_for_rebuild(session, kind, ids)
    documents = await build_documents(session, kind, ids)
    gone = sorted(set(ids) - {doc.id for doc in documents})
    backend = site.plugins.search_backend(site)
    if isinstance(backend, SqlSearchBackend):
        if documents:
            await backend.index(documents, session=session)
        if gone:
            await backend.remove(kind, gone, session=session)
        return
    if documents:
        await backend.index(documents)
    if gone:
        await backend.remove(kind, gone)


def event_handlers(site: Site) -> list[EventHandler]:
    """The handlers ``register_event_handlers`` returns."""

    async def developers(event: Event, session: AsyncSession) -> None:
        user_id = uuid.UUID(str(event.payload["user_id"]))
        await refresh_documents(site, session, "developer", [user_id])

    async def projects(event: Event, session: AsyncSession) -> None:
        await refresh_documents(site, session, "project", [uuid.UUID(str(event.payload["project_id"]))])

    async def services(event: Event, session: AsyncSession) -> None:
        await refresh_documents(site, session, "service", [uuid.UUID(str(event.payload["listing_id"]))])

    async def reputations(event: Event, session: AsyncSession) -> None:
        """A developer's rating moved: their document and their services' carry it."""
        if event.payload.get("role") != "developer":
            return
        user_id = uuid.UUID(str(event.payload["user_id"]))
        await refresh_documents(site, session, "developer", [user_id])
        listings = await session.scalars(select(Listing.id).where(
            Listing.developer_id == user_id, Listing.status == ListingStatus.PUBLISHED))
        await refresh_documents(site, session, "service", list(listings))

    return [
        EventHandler(id="search-sql-reputation", events=(ReputationChanged.event_type,), handle=reputations),
        EventHandler(id="search-sql-developers", events=DEVELOPER_EVENTS, handle=developers),
        EventHandler(id="search-sql-projects", events=PROJECT_EVENTS, handle=projects),
        EventHandler(id="search-sql-services", events=SERVICE_EVENTS, handle=services),
    ]
