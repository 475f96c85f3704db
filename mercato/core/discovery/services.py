"""Finding things: ask the search backend, then load what it found through the domains, which
check again who may see each object (an index is never the last word on access). The search
API goes through :func:`find`; the theme's services page uses :func:`load`, and its projects
page draws its cards from the projects' short columns (``discovery.pages``)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.profiles import ProfileService
from mercato.core.listings.models import Listing
from mercato.core.listings.services import ListingService
from mercato.core.projects.models import Project
from mercato.core.projects.services import ProjectService
from mercato.core.reputation.models import Reputation
from mercato.core.search import Kind, SearchQuery, SearchResults

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site


async def find(
    site: Site, session: AsyncSession, query: SearchQuery, viewer: uuid.UUID | None, *, files: bool = True
) -> tuple[list[Any], SearchResults]:
    """The objects ``query`` finds that ``viewer`` may see, in the backend's order, and the
    backend's answer (total, facets, next cursor). ``files=False``: projects come without
    their attachments (cards do not show them). ``ValueError`` for a bad cursor."""
    found = await site.plugins.search_backend(site).search(query, session=session)
    return await load(site, session, query.kind, found.ids, viewer, files=files), found


async def load(
    site: Site, session: AsyncSession, kind: Kind, ids: list[uuid.UUID], viewer: uuid.UUID | None,
    *, files: bool = True,
) -> list[Any]:
    """The objects of ``kind`` with ``ids`` that ``viewer`` may see, in that order."""
    if not ids:
        return []
    if kind == "project":
        projects = ProjectService(site)
        with_clients = (
            select(Project, User.display_name)
            .outerjoin(User, User.id == Project.client_id)
            .where(Project.id.in_(ids))
        )
        loaded = (await session.execute(with_clients)).all()
        by_id = {project.id: project for project, _ in loaded}
        names = {project.client_id: name for project, name in loaded if name is not None}
        visible = [by_id[i] for i in ids if i in by_id and await projects.can_view(session, by_id[i], viewer)]
        return await projects.outs(session, visible, viewer, files=files, client_names=names)
    if kind == "service":
        listings = ListingService(site)
        rows = {x.id: x for x in (await session.scalars(select(Listing).where(Listing.id.in_(ids))))}
        owners = {x.developer_id for x in rows.values()}
        # Held here, so ``can_view``'s ``session.get`` finds them in the identity map.
        _developers = list((await session.execute(select(User).where(User.id.in_(owners)))).scalars())
        shown = [rows[i] for i in ids if i in rows and await listings.can_view(session, rows[i], viewer)]
        return await listings.outs(session, shown, viewer)
    users = {u.id: u for u in (await session.execute(select(User).where(User.id.in_(ids)))).scalars()}
    profiles = ProfileService(site)
    reputations: dict[uuid.UUID, list[Reputation]] = {}
    for row in await session.scalars(select(Reputation).where(Reputation.user_id.in_(list(users)))):
        reputations.setdefault(row.user_id, []).append(row)
    return [
        await profiles.public_user(session, users[i], reputations.get(i, []))
        for i in ids
        if i in users and users[i].status == UserStatus.ACTIVE
    ]
