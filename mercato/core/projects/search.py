"""Projects as search documents: only open, public projects moderators have not hidden can be found."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import Select, select

from mercato.core.accounts.models import Skill
from mercato.core.projects.models import Project, ProjectStatus
from mercato.core.search import SearchDocument

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

PROJECT_EVENTS = ("project.published", "project.updated", "project.hired", "project.closed")
"""Events after which a project's document is rebuilt (or removed when no longer findable)."""


def is_findable(project: Project) -> bool:
    return (project.status == ProjectStatus.OPEN and project.visibility == "public"
            and project.hidden_at is None)


async def project_documents(session: AsyncSession, ids: list[uuid.UUID]) -> list[SearchDocument]:
    """Documents for the findable projects among ``ids`` (the others should be removed)."""
    if not ids:
        return []
    projects = [
        p
        for p in (await session.execute(select(Project).where(Project.id.in_(ids)))).scalars()
        if is_findable(p)
    ]
    slugs = {slug for p in projects for slug in p.skills}
    names = (
        dict((await session.execute(select(Skill.slug, Skill.name).where(Skill.slug.in_(slugs)))).all())
        if slugs
        else {}
    )
    return [
        SearchDocument(
            kind="project",
            id=p.id,
            title=p.title,
            text="\n".join([p.description, " ".join(names.get(s, s) for s in p.skills)]),
            skills=list(p.skills),
            category=p.category_slug,
            currency=p.currency,
            price_min=p.budget_min,
            price_max=p.budget_max,
            hourly=p.budget_type == "hourly",
            created_at=p.published_at or p.created_at,
            owner_id=p.client_id,
        )
        for p in projects
    ]


def project_ids() -> Select[uuid.UUID]:
    """A query for the id of every findable project, oldest first (for a full reindex)."""
    return (select(Project.id).where(Project.status == ProjectStatus.OPEN, Project.visibility == "public",
                                     Project.hidden_at.is_(None))
            .order_by(Project.published_at, Project.id))
