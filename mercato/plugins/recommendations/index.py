"""Keeping :class:`~.models.SkillPosting` rows current.

Every event only says which item may have changed; its rows are rebuilt from the item as it
is now (none when it is no longer open and public, or published), so the order events
arrive in does not matter. :func:`rebuild_all` does every item at once (``mercato
recommendations reindex``, and sites whose data was written in bulk).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select

from mercato.core.accounts.models import Skill
from mercato.core.events import Event, EventHandler
from mercato.core.listings.models import Listing, ListingStatus
from mercato.core.projects.models import Project, ProjectStatus

from .models import SkillPosting
from .signals import Taxonomy

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

PROJECT_EVENTS = ("project.published", "project.updated", "project.hired", "project.closed")
SERVICE_EVENTS = ("service.published", "service.updated", "service.paused", "service.archived")
BATCH = 2_000


async def taxonomy(session: AsyncSession) -> Taxonomy:
    return Taxonomy.of(await session.execute(select(Skill.slug, Skill.name, Skill.aliases)))


async def rebuild(
    session: AsyncSession, kind: str, ids: list[uuid.UUID], skills: Taxonomy | None = None
) -> int:
    """Replace the rows of ``ids`` (of ``kind``) with those their items call for now; returns
    how many rows were written."""
    if not ids:
        return 0
    skills = skills or await taxonomy(session)
    if session.get_bind().dialect.name == "postgresql":
        # one rebuild of an item at a time (held until commit): two events of one project
        # handled at once on two instances must not both insert its rows
        for item_id in sorted(set(ids)):
            digest = hashlib.blake2b(f"recommendations:{kind}:{item_id}".encode(), digest_size=8).digest()
            key = int.from_bytes(digest, "big", signed=True)
            await session.execute(select(func.pg_advisory_xact_lock(key)))
    await session.execute(
        delete(SkillPosting).where(SkillPosting.kind == kind, SkillPosting.item_id.in_(ids))
    )
    if kind == "project":
        query = select(Project.id, Project.skills, Project.published_at).where(
            Project.id.in_(ids), Project.status == ProjectStatus.OPEN, Project.visibility == "public"
        )
    else:
        query = select(Listing.id, Listing.skills, Listing.published_at).where(
            Listing.id.in_(ids), Listing.status == ListingStatus.PUBLISHED
        )
    rows: list[dict[str, Any]] = [
        {"kind": kind, "item_id": item_id, "skill_slug": slug, "published_at": published_at}
        for item_id, item_skills, published_at in (await session.execute(query))
        if published_at is not None
        for slug in skills.slugs(item_skills or [])
    ]
    if rows:
        await session.execute(insert(SkillPosting), rows)
    return len(rows)


async def rebuild_all(site: Site, progress: Callable[[int], None] | None = None) -> int:
    """Rebuild the rows of every open public project and published service, in batches of
    :data:`BATCH` items per transaction; ``progress`` hears how many items each batch did."""
    written = 0
    async with site.db.transaction() as session:
        await session.execute(delete(SkillPosting))
    for kind, query in (
        (
            "project",
            select(Project.id)
            .where(Project.status == ProjectStatus.OPEN, Project.visibility == "public")
            .order_by(Project.id),
        ),
        ("service", select(Listing.id).where(Listing.status == ListingStatus.PUBLISHED).order_by(Listing.id)),
    ):
        async with site.db.reading() as session:
            ids = list((await session.scalars(query)).all())
            skills = await taxonomy(session)
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            async with site.db.transaction() as session:
                written += await rebuild(session, kind, batch, skills)
            if progress is not None:
                progress(len(batch))
    return written


def event_handlers() -> list[EventHandler]:
    """Projects and services re-indexed when published, edited or withdrawn."""

    async def projects(event: Event, session: AsyncSession) -> None:
        await rebuild(session, "project", [uuid.UUID(str(event.payload["project_id"]))])

    async def services(event: Event, session: AsyncSession) -> None:
        await rebuild(session, "service", [uuid.UUID(str(event.payload["listing_id"]))])

    return [
        EventHandler(id="recommendations-projects", events=PROJECT_EVENTS, handle=projects),
        EventHandler(id="recommendations-services", events=SERVICE_EVENTS, handle=services),
    ]
