"""Business rules of projects: posting, editing, publishing, closing, invitations and who
may see what. The only place that changes projects; proposals live in ``proposals.py``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from litestar.exceptions import NotFoundException, PermissionDeniedException
from sqlalchemy import exists, select

from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.profiles import ProfileService
from mercato.core.accounts.services import AccountService
from mercato.core.catalog.services import expand_categories, resolve_category
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import Event, emit
from mercato.core.markdown import render_markdown
from mercato.core.pagination import newest_first
from mercato.core.projects import events, schemas
from mercato.core.projects.attachments import attachments_of
from mercato.core.projects.models import (
    PROJECT_TRANSITIONS,
    Project,
    ProjectInvite,
    ProjectStatus,
    Proposal,
)
from mercato.core.states import InvalidTransition, check_transition

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site


class Viewable(Protocol):
    """What deciding who may see a project reads: a :class:`Project`, or a row of these columns."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def client_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def visibility(self) -> str: ...
    @property
    def published_at(self) -> datetime | None: ...
    @property
    def hidden_at(self) -> datetime | None: ...


MAX_BUDGET_SPREAD = 100
"""A budget's maximum may be at most this many times its minimum."""


class ProjectService:
    """Projects of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.accounts = AccountService(site)
        self.profiles = ProfileService(site)

    # -- who may see and do what -------------------------------------------------
    async def can_view(self, session: AsyncSession, project: Viewable, user_id: uuid.UUID | None) -> bool:
        """Drafts: the owner. Invite-only: the owner, invited developers and bidders.
        Everything else that was ever published: anyone. Hidden by moderators: the owner only."""
        if user_id is not None and project.client_id == user_id:
            return True
        if project.status == ProjectStatus.DRAFT or project.published_at is None:
            return False  # never published (a draft, or a cancelled draft)
        if project.hidden_at is not None:
            return False
        if project.visibility == "public":
            return True
        if user_id is None:
            return False
        invited = await session.get(ProjectInvite, (project.id, user_id))
        if invited is not None:
            return True
        bid = await session.execute(
            select(Proposal.id).where(Proposal.project_id == project.id, Proposal.developer_id == user_id)
        )
        return bid.first() is not None

    async def visible(
        self, session: AsyncSession, project_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> Project:
        """The project if ``user_id`` may see it; 404 otherwise (never reveal it exists)."""
        project = await session.get(Project, project_id)
        if project is None or not await self.can_view(session, project, user_id):
            raise NotFoundException("No such project.")
        return project

    async def owned(
        self, session: AsyncSession, project_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool = False
    ) -> Project:
        """The project if ``user_id`` owns it; 404 otherwise. ``lock``: FOR UPDATE on PostgreSQL."""
        query = select(Project).where(Project.id == project_id)
        if lock:
            # populate_existing: the row may already be in this session from before the lock
            query = query.with_for_update().execution_options(populate_existing=True)
        project = (await session.execute(query)).scalar_one_or_none()
        if project is None or project.client_id != user_id:
            if project is not None and await self.can_view(session, project, user_id):
                raise PermissionDeniedException("Only the client who posted this project can do that.")
            raise NotFoundException("No such project.")
        return project

    # -- posting and editing ------------------------------------------------------
    async def _clean(
        self,
        session: AsyncSession,
        *,
        category: str,
        skills: list[str],
        budget: schemas.Budget,
        questions: list[str],
    ) -> dict[str, Any]:
        await resolve_category(session, category)
        resolved = await self.profiles.resolve_skills(session, skills, field="skills")
        if budget.max < budget.min:
            raise field_error("budget", "The budget's maximum must be at least its minimum.")
        if budget.max > budget.min * MAX_BUDGET_SPREAD:
            raise field_error("budget", "Narrow the budget: its maximum is more than 100 times its minimum.")
        cleaned = [" ".join(q.split()) for q in questions]
        if any(not q for q in cleaned):
            raise field_error("screening_questions", "Questions cannot be empty.")
        return {
            "category_slug": category,
            "skills": [s.slug for s in resolved],
            "budget_type": budget.type,
            "budget_min": budget.min,
            "budget_max": budget.max,
            "currency": budget.currency,
            "screening_questions": cleaned,
        }

    async def create(self, session: AsyncSession, client: User, body: schemas.ProjectIn) -> Project:
        if not client.is_client:
            raise PermissionDeniedException(
                "Posting projects needs the client role: turn it on in your profile."
            )
        values = await self._clean(
            session,
            category=body.category,
            skills=body.skills,
            budget=body.budget,
            questions=body.screening_questions,
        )
        project = Project(
            client_id=client.id,
            title=" ".join(body.title.split()),
            description=body.description.strip(),
            duration=body.duration,
            experience_level=body.experience_level,
            visibility=body.visibility,
            **values,
        )
        session.add(project)
        await session.flush()
        if body.publish:
            await self.publish(session, client, project)
        return project

    async def update(self, session: AsyncSession, project: Project, body: schemas.ProjectUpdate) -> None:
        if project.status not in (ProjectStatus.DRAFT, ProjectStatus.OPEN):
            raise InvalidTransition(f"This project is {project.status}; it can no longer be edited.")
        budget = body.budget or schemas.Budget(
            type=project.budget_type,  # type: ignore[arg-type]
            min=project.budget_min,
            max=project.budget_max,
            currency=project.currency,
        )
        if (
            project.status == ProjectStatus.OPEN
            and project.proposal_count
            and body.budget is not None
            and (body.budget.currency != project.currency or body.budget.type != project.budget_type)
        ):
            raise InvalidTransition(
                "Proposals were made in this budget's currency and type; they cannot change."
            )
        values = await self._clean(
            session,
            category=body.category or project.category_slug,
            skills=body.skills if body.skills is not None else list(project.skills),
            budget=budget,
            questions=(
                body.screening_questions
                if body.screening_questions is not None
                else list(project.screening_questions)
            ),
        )
        if (
            project.status == ProjectStatus.OPEN
            and project.proposal_count
            and values["screening_questions"] != list(project.screening_questions)
        ):
            raise InvalidTransition(
                "Developers already answered these screening questions; they cannot change."
            )
        for key, value in values.items():
            setattr(project, key, value)
        if body.title is not None:
            project.title = " ".join(body.title.split())
        if body.description is not None:
            project.description = body.description.strip()
        for name in ("duration", "experience_level", "visibility"):
            if getattr(body, name) is not None:
                setattr(project, name, getattr(body, name))
        project.updated_at = utcnow()
        emit(session, Event.of(events.ProjectUpdated(project_id=project.id), actor_id=project.client_id))

    async def publish(self, session: AsyncSession, client: User, project: Project) -> None:
        check_transition(project.status, ProjectStatus.OPEN, PROJECT_TRANSITIONS, "project")
        self.accounts.require_verified(client)
        project.status = ProjectStatus.OPEN
        project.published_at = utcnow()
        emit(
            session,
            Event.of(events.ProjectPublished(project_id=project.id, client_id=client.id), actor_id=client.id),
        )

    async def close(self, session: AsyncSession, project: Project, *, target: ProjectStatus) -> None:
        """``closed`` (open, nobody hired) or ``cancelled``; live proposals are declined."""
        from mercato.core.projects.proposals import decline_live_proposals

        if project.status not in (ProjectStatus.DRAFT, ProjectStatus.OPEN):
            # A hired project ends with its contract (completed or cancelled there), never here.
            raise InvalidTransition(
                f"This project is {project.status}; it can no longer be closed or cancelled."
            )
        check_transition(project.status, target, PROJECT_TRANSITIONS, "project")
        project.status = target
        project.ended_at = utcnow()
        await decline_live_proposals(session, project, message="The client closed this project.")
        emit(
            session,
            Event.of(events.ProjectClosed(project_id=project.id, status=target), actor_id=project.client_id),
        )

    # -- invitations -------------------------------------------------------------
    async def invite(self, session: AsyncSession, project: Project, body: schemas.InviteIn) -> None:
        if project.status not in (ProjectStatus.DRAFT, ProjectStatus.OPEN):
            raise InvalidTransition("Only open projects take invitations.")
        developer = await session.get(User, body.developer_id)
        if developer is None or developer.status != UserStatus.ACTIVE or not developer.is_developer:
            raise field_error("developer_id", "No developer with this id.")
        if developer.id == project.client_id:
            raise field_error("developer_id", "You cannot invite yourself.")
        if await session.get(ProjectInvite, (project.id, developer.id)) is None:
            session.add(
                ProjectInvite(project_id=project.id, developer_id=developer.id, message=body.message.strip())
            )
            emit(
                session,
                Event.of(
                    events.ProjectInvited(project_id=project.id, developer_id=developer.id),
                    actor_id=project.client_id,
                ),
            )

    # -- reading -------------------------------------------------------------------
    async def out(
        self, session: AsyncSession, project: Project, viewer: uuid.UUID | None
    ) -> schemas.ProjectOut:
        return (await self.outs(session, [project], viewer))[0]

    async def outs(
        self,
        session: AsyncSession,
        projects: Sequence[Project],
        viewer: uuid.UUID | None,
        *,
        files: bool = True,
        client_names: dict[uuid.UUID, str] | None = None,
    ) -> list[schemas.ProjectOut]:
        """What ``viewer`` is shown of each project, loaded together: a list costs the same few
        queries whatever its length. ``files=False`` leaves ``attachments`` empty, for lists
        that never show them (the browse page's cards); ``client_names`` saves a query when
        the caller loaded them with the projects."""
        if not projects:
            return []
        ids = [p.id for p in projects]
        if client_names is None:
            client_ids = list({p.client_id for p in projects})
            query = select(User.id, User.display_name).where(User.id.in_(client_ids))
            client_names = dict((await session.execute(query)).all())
        mine: dict[uuid.UUID, uuid.UUID] = {}
        if viewer is not None:
            rows = await session.execute(
                select(Proposal.project_id, Proposal.id).where(
                    Proposal.project_id.in_(ids), Proposal.developer_id == viewer
                )
            )
            mine = dict(rows.all())
        attached = await attachments_of(session, "project", ids) if files else {}
        return [
            schemas.ProjectOut(
                id=project.id,
                client_id=project.client_id,
                client_name=client_names.get(project.client_id, "Deleted user"),
                title=project.title,
                description=project.description,
                description_html=project.description_html or str(render_markdown(project.description)),
                category=project.category_slug,
                skills=list(project.skills),
                budget=schemas.BudgetOut(
                    type=project.budget_type,
                    min=project.budget_min,
                    max=project.budget_max,
                    currency=project.currency,
                ),
                duration=project.duration,
                experience_level=project.experience_level,
                visibility=project.visibility,
                screening_questions=list(project.screening_questions),
                status=project.status,
                proposal_count=project.proposal_count,
                created_at=project.created_at,
                published_at=project.published_at,
                is_owner=viewer == project.client_id,
                my_proposal_id=None if viewer == project.client_id else mine.get(project.id),
                attachments=attached.get(project.id, []),
                hidden=project.hidden_at is not None,
            )
            for project in projects
        ]

    async def browse(
        self,
        session: AsyncSession,
        *,
        viewer: uuid.UUID | None,
        categories: list[str],
        skills: list[str],
        budget_type: str | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.ProjectPage:
        """Open public projects, newest first (text search is ``/api/v1/search``)."""
        query = select(Project).where(Project.status == ProjectStatus.OPEN, Project.visibility == "public",
                                      Project.hidden_at.is_(None))
        if categories:
            query = query.where(Project.category_slug.in_(await expand_categories(session, categories)))
        if budget_type:
            query = query.where(Project.budget_type == budget_type)
        wanted = set(skills)
        # Skills live in a JSON list: filtered in Python (search does it indexed).
        page, next_cursor = await newest_first(
            session, query, moment=Project.published_at, row_id=Project.id, cursor=cursor, limit=limit,
            keep=lambda project: wanted <= set(project.skills),
        )
        items = await self.outs(session, page, viewer)
        return schemas.ProjectPage(items=items, next_cursor=next_cursor)

    async def mine(self, session: AsyncSession, client_id: uuid.UUID) -> list[Project]:
        return list(
            (
                await session.execute(
                    select(Project).where(Project.client_id == client_id).order_by(Project.created_at.desc())
                )
            ).scalars()
        )

    async def invitations(self, session: AsyncSession, developer_id: uuid.UUID) -> list[Project]:
        """Open projects ``developer_id`` was invited to and has not bid on yet."""
        bid = exists().where(Proposal.project_id == Project.id, Proposal.developer_id == developer_id)
        query = (
            select(Project)
            .join(ProjectInvite, ProjectInvite.project_id == Project.id)
            .where(ProjectInvite.developer_id == developer_id, Project.status == ProjectStatus.OPEN, ~bid)
            .order_by(ProjectInvite.created_at.desc())
        )
        return list((await session.execute(query)).scalars())
