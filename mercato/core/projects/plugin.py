"""Projects and proposals as a built-in plugin."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mercato import hookimpl
from mercato.core.db import utcnow
from mercato.core.events import Event, emit
from mercato.core.moderation.subjects import ReportedItem, ReportSubject, excerpt
from mercato.core.projects.dashboard import dashboard
from mercato.core.projects.events import ProjectUpdated
from mercato.core.projects.models import PROJECT_MODELS, Project
from mercato.core.projects.pages import PAGE_ROUTES
from mercato.core.projects.routes import API_CONTROLLERS
from mercato.core.projects.services import ProjectService
from mercato.core.site import Site

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(PROJECT_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [*API_CONTROLLERS, *PAGE_ROUTES, dashboard]


@hookimpl
def register_report_subjects(site: Site) -> list[ReportSubject]:
    """``project``: a project; hiding it takes it off public pages and search."""
    service = ProjectService(site)

    async def describe(session: AsyncSession, project_id: uuid.UUID, viewer_id: uuid.UUID | None
                       ) -> ReportedItem | None:
        project = await session.get(Project, project_id)
        if project is None:
            return None
        if viewer_id is not None and not await service.can_view(session, project, viewer_id):
            return None
        return ReportedItem(owner_id=project.client_id, title=project.title,
                            excerpt=excerpt(project.description),
                            url=f"/projects/{project.id}", hidden=project.hidden_at is not None)

    async def hide(session: AsyncSession, project_id: uuid.UUID, hidden: bool) -> None:
        project = await session.get(Project, project_id)
        if project is not None:
            project.hidden_at = utcnow() if hidden else None
            emit(session, Event.of(ProjectUpdated(project_id=project.id)))

    return [ReportSubject(kind="project", label="a project", describe=describe, hide=hide)]
