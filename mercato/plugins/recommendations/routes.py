"""The recommendations API: projects for the signed-in developer, developers for one's own
project, services like a published service. Lists are ranked, best first, in one page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import QueryParameter
from sqlalchemy import select

from mercato.core.accounts.models import User
from mercato.core.accounts.routes import current_user, require_principal
from mercato.core.errors import field_error
from mercato.core.listings.models import Listing, ListingStatus
from mercato.core.projects.models import Project
from mercato.core.projects.routes import problems
from mercato.core.recommend import Suggestion
from mercato.core.site import Site

MAX_LIMIT = 50
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="How many suggestions (1-50).")]


class RecommendationOut(msgspec.Struct, kw_only=True):
    """One suggestion: what it is, how well it fits and why."""

    id: uuid.UUID
    """The project's, developer's (user id) or service's id."""
    title: str
    """The project's or service's title, or the developer's display name."""
    url: str
    """Its page in the theme."""
    score: float
    """Higher is better; comparable only within one list."""
    reasons: list[str]
    """Why, in words: ``Matches 4 of your 5 skills``, ``Budget fits your rate``."""


class RecommendationPage(msgspec.Struct, kw_only=True):
    items: list[RecommendationOut]
    next_cursor: str | None = None
    """Always ``null``: a ranked list comes in one page (``limit`` up to 50)."""


async def titled(session: Any, kind: str, suggestions: list[Suggestion]) -> list[RecommendationOut]:
    """``suggestions`` with their titles and pages (``kind``: project, developer, service)."""
    ids = [s.id for s in suggestions]
    if not ids:
        return []
    if kind == "project":
        rows = await session.execute(select(Project.id, Project.title).where(Project.id.in_(ids)))
        prefix = "/projects/"
    elif kind == "developer":
        rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
        prefix = "/users/"
    else:
        rows = await session.execute(select(Listing.id, Listing.title).where(Listing.id.in_(ids)))
        prefix = "/services/"
    titles = dict(rows.all())
    return [
        RecommendationOut(
            id=s.id, title=titles[s.id], url=f"{prefix}{s.id}", score=s.score, reasons=s.reasons
        )
        for s in suggestions
        if s.id in titles
    ]


class RecommendationsController(Controller):
    path = "/api/v1/recommendations"
    tags = ["recommendations"]

    @get(
        "/projects",
        summary="Open projects that fit the signed-in developer",
        responses=problems(_401="Not signed in", _403="You do not have the developer role"),
    )
    async def projects(
        self, request: Request[Any, Any, Any], site: NamedDependency[Site], limit: Limit = 10
    ) -> RecommendationPage:
        """Open public projects matching your skills, rate and the clients' reputation, newest
        first among equals; never your own projects or ones you already bid on."""
        require_principal(request)
        recommender = site.plugins.recommender(site)
        async with site.db.reading() as session:
            user = await current_user(request, session, site)
            if not user.is_developer:
                raise PermissionDeniedException(
                    "Recommendations of projects are for developers: turn on the "
                    "developer role in your profile settings."
                )
            suggestions = await recommender.projects_for_developer(session, user.id, limit)
            items = await titled(session, "project", suggestions)
        return RecommendationPage(items=items)

    @get(
        "/developers",
        summary="Developers who fit one of your projects",
        responses=problems(_400="No project_id", _401="Not signed in", _404="No such project, or not yours"),
    )
    async def developers(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        project_id: Annotated[uuid.UUID | None, QueryParameter(description="Your project's id.")] = None,
        limit: Limit = 10,
    ) -> RecommendationPage:
        """Developers listing your project's skills, with rates that fit its budget and good
        reviews; those who already sent a proposal are left out. Only the project's client
        may ask."""
        principal = require_principal(request)
        if project_id is None:
            raise field_error("project_id", "Name one of your projects: ?project_id=…")
        recommender = site.plugins.recommender(site)
        async with site.db.reading() as session:
            client_id = await session.scalar(select(Project.client_id).where(Project.id == project_id))
            if client_id != principal.user_id:
                raise NotFoundException("No such project.")
            suggestions = await recommender.developers_for_project(session, project_id, limit)
            items = await titled(session, "developer", suggestions)
        return RecommendationPage(items=items)

    @get(
        "/services",
        summary="Services like a published service",
        responses=problems(_400="No service_id", _404="No such published service"),
    )
    async def services(
        self,
        site: NamedDependency[Site],
        service_id: Annotated[
            uuid.UUID | None, QueryParameter(description="A published service's id.")
        ] = None,
        limit: Limit = 10,
    ) -> RecommendationPage:
        """Other developers' published services sharing its skills or category, at similar prices."""
        if service_id is None:
            raise field_error("service_id", "Name a service: ?service_id=…")
        recommender = site.plugins.recommender(site)
        async with site.db.reading() as session:
            status = await session.scalar(select(Listing.status).where(Listing.id == service_id))
            if status != ListingStatus.PUBLISHED:
                raise NotFoundException("No such service.")
            suggestions = await recommender.similar_services(session, service_id, limit)
            items = await titled(session, "service", suggestions)
        return RecommendationPage(items=items)
