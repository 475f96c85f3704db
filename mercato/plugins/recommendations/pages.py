"""What the theme shows: "Recommended for you" on a developer's dashboard, "Developers who
fit" on a client's own project, "Similar services" on a service's page.

Each is a template variable from ``extra_template_vars``, included by the page only when it
is defined, so a site without this plugin (or another recommender's) shows nothing extra. A
recommender that fails is logged and its box left out: it never breaks the page.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select

from mercato.core.accounts.forms import format_rate
from mercato.core.accounts.models import Profile, User
from mercato.core.accounts.schemas import Money
from mercato.core.catalog.display import format_money
from mercato.core.listings.models import Listing, ListingPackage, ListingStatus
from mercato.core.projects.models import Project, ProjectInvite, ProjectStatus
from mercato.core.projects.pages import format_budget, time_ago
from mercato.core.projects.schemas import BudgetOut

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

log = structlog.get_logger("mercato.recommendations")

SHOWN = 6
"""Suggestions shown in a page's box."""


async def template_vars(site: Site, request: Any, template_name: str) -> dict[str, Any]:
    """The variable ``template_name`` includes, for the signed-in person (or anyone)."""
    if request is None or template_name not in BOXES:
        return {}
    from mercato.core.accounts.middleware import principal_of

    principal = principal_of(request)
    try:
        return await BOXES[template_name](site, request, principal.user_id if principal else None)
    except Exception:  # a recommender's failure never breaks the page
        log.exception("recommendations box failed", template=template_name)
        return {}


async def _dashboard(site: Site, request: Any, user_id: uuid.UUID | None) -> dict[str, Any]:
    if user_id is None:
        return {}
    async with site.db.reading() as session:
        user = await session.get(User, user_id)
        if user is None or not user.is_developer:
            return {}
        suggestions = await site.plugins.recommender(site).projects_for_developer(session, user_id, SHOWN)
        rows = (
            {
                p.id: p
                for p in (
                    await session.execute(
                        select(
                            Project.id,
                            Project.title,
                            Project.budget_type,
                            Project.budget_min,
                            Project.budget_max,
                            Project.currency,
                            Project.published_at,
                        ).where(Project.id.in_([s.id for s in suggestions]))
                    )
                ).all()
            }
            if suggestions
            else {}
        )
        items = [
            {
                "id": s.id,
                "title": rows[s.id].title,
                "url": f"/projects/{s.id}",
                "reasons": s.reasons,
                "budget": format_budget(
                    BudgetOut(
                        type=rows[s.id].budget_type,
                        min=rows[s.id].budget_min,
                        max=rows[s.id].budget_max,
                        currency=rows[s.id].currency,
                    )
                ),
                "posted": time_ago(rows[s.id].published_at),
            }
            for s in suggestions
            if s.id in rows
        ]
        has_skills = await _has_skills(session, user_id)
    return {"recommended_projects": {"suggestions": items, "has_skills": has_skills}}


async def _has_skills(session: AsyncSession, user_id: uuid.UUID) -> bool:
    from mercato.core.accounts.models import UserSkill

    return bool(
        await session.scalar(select(func.count()).select_from(UserSkill).where(UserSkill.user_id == user_id))
    )


async def _project(site: Site, request: Any, user_id: uuid.UUID | None) -> dict[str, Any]:
    project_id = request.path_params.get("project_id")
    if user_id is None or project_id is None:
        return {}
    async with site.db.reading() as session:
        project = await session.get(Project, project_id)
        editable = (ProjectStatus.DRAFT, ProjectStatus.OPEN)
        if project is None or project.client_id != user_id or project.status not in editable:
            return {}
        suggestions = await site.plugins.recommender(site).developers_for_project(session, project.id, SHOWN)
        ids = [s.id for s in suggestions]
        people = (
            {
                row.id: row
                for row in (
                    await session.execute(
                        select(
                            User.id,
                            User.display_name,
                            Profile.headline,
                            Profile.hourly_rate,
                            Profile.currency,
                        )
                        .outerjoin(Profile, Profile.user_id == User.id)
                        .where(User.id.in_(ids))
                    )
                ).all()
            }
            if ids
            else {}
        )
        invited = (
            set(
                (
                    await session.scalars(
                        select(ProjectInvite.developer_id).where(
                            ProjectInvite.project_id == project.id, ProjectInvite.developer_id.in_(ids)
                        )
                    )
                ).all()
            )
            if ids
            else set()
        )
        items = [
            {
                "id": s.id,
                "name": people[s.id].display_name,
                "headline": people[s.id].headline or "",
                "rate": format_rate(Money(amount=people[s.id].hourly_rate, currency=people[s.id].currency))
                if people[s.id].hourly_rate
                else "",
                "reasons": s.reasons,
                "invited": s.id in invited,
            }
            for s in suggestions
            if s.id in people
        ]
        has_skills, project_id = bool(project.skills), project.id
    return {"fitting_developers": {"suggestions": items, "project_id": project_id, "has_skills": has_skills}}


async def _service(site: Site, request: Any, user_id: uuid.UUID | None) -> dict[str, Any]:
    listing_id = request.path_params.get("listing_id")
    if listing_id is None:
        return {}
    async with site.db.reading() as session:
        status = await session.scalar(select(Listing.status).where(Listing.id == listing_id))
        if status != ListingStatus.PUBLISHED:
            return {}
        suggestions = await site.plugins.recommender(site).similar_services(session, listing_id, SHOWN)
        ids = [s.id for s in suggestions]
        rows = (
            {
                row.id: row
                for row in (
                    await session.execute(
                        select(Listing.id, Listing.title, User.display_name)
                        .join(User, User.id == Listing.developer_id)
                        .where(Listing.id.in_(ids))
                    )
                ).all()
            }
            if ids
            else {}
        )
        prices = (
            dict(
                (
                    await session.execute(
                        select(ListingPackage.listing_id, func.min(ListingPackage.price))
                        .where(ListingPackage.listing_id.in_(ids))
                        .group_by(ListingPackage.listing_id)
                    )
                ).all()
            )
            if ids
            else {}
        )
        currencies = (
            dict(
                (
                    await session.execute(
                        select(ListingPackage.listing_id, func.min(ListingPackage.currency))
                        .where(ListingPackage.listing_id.in_(ids))
                        .group_by(ListingPackage.listing_id)
                    )
                ).all()
            )
            if ids
            else {}
        )
        items = [
            {
                "id": s.id,
                "title": rows[s.id].title,
                "developer": rows[s.id].display_name,
                "price": f"From {format_money(prices[s.id], currencies[s.id])}" if s.id in prices else "",
                "reasons": s.reasons,
            }
            for s in suggestions
            if s.id in rows
        ]
    return {"similar_services": {"suggestions": items}}


BOXES = {
    "projects/dashboard.html": _dashboard,
    "projects/detail.html": _project,
    "services/detail.html": _service,
}
"""Template name → the builder of its variable."""
