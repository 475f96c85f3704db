"""The theme's browse pages: open projects (``/projects``), published services
(``/services``) and developers (``/developers``), with a search box, a filter sidebar, skill
facet counts, sorting and "Next page" links. All ask the search backend
(``get_search_backend``), like ``/api/v1/search``.

The index follows the database through events, a moment behind: something just published
shows up here once its event is handled.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter
from litestar.response import Template
from markupsafe import Markup
from sqlalchemy import bindparam, select

from mercato.core.accounts.forms import (
    AnyRequest,
    SkillChoices,
    errors_of,
    format_rate,
    parse_rate,
    skill_names,
    split_list,
)
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.profiles import ProfileService
from mercato.core.catalog.display import Names, load_names, plain_errors
from mercato.core.catalog.services import expand_categories
from mercato.core.discovery.services import load
from mercato.core.listings import pages as service_pages
from mercato.core.projects import pages as project_pages
from mercato.core.projects.models import Project
from mercato.core.projects.services import ProjectService
from mercato.core.search import Kind, SearchQuery, Sort
from mercato.core.site import Site

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

PAGE_SIZE = 20
CARD_CACHE_SIZE = 1024
"""Rendered project cards kept per site (a few kilobytes each)."""
FACETS_SHOWN = 12
"""Skills listed with their counts in the sidebar (selected ones are always listed)."""
SORTS: dict[str, str] = {
    "relevance": "Best match",
    "newest": "Newest",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "rating": "Top rated",
}
RATED_PATHS = frozenset({"/services", "/developers"})
"""Browse pages whose results carry a rating (projects do not)."""

Slugs = Annotated[list[str] | None, QueryParameter(max_items=40)]
Text = Annotated[str | None, QueryParameter(max_length=500)]


@dataclass
class Browse:
    """What a browse page was asked for, checked, and what it found."""

    path: str
    names: Names
    q: str = ""
    categories: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    """Skill slugs: the ticked facets plus the skills typed in the picker."""
    sort: str = "relevance"
    extra: dict[str, str] = field(default_factory=dict)
    """Page-specific filters as typed (kept in links and the form)."""
    typed: str = ""
    """Skills typed in the picker that could not be read (kept for correcting)."""
    errors: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    next_cursor: str | None = None
    facets: dict[str, int] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """The query string that asks for this page's results (without cursor and page)."""
        found: dict[str, Any] = {
            "q": self.q,
            "category": self.categories,
            "skill": self.skills,
            **self.extra,
        }
        if self.sort != self.default_sort:
            found["sort"] = self.sort
        return {key: value for key, value in found.items() if value}

    @property
    def default_sort(self) -> str:
        return "relevance" if self.q else "newest"

    def sort_options(self) -> list[dict[str, Any]]:
        """The default order is sent as ``""``, so a new search from a list starts at best match."""
        return [
            {
                "value": "" if value == self.default_sort else value,
                "label": label,
                "selected": value == self.sort,
            }
            for value, label in SORTS.items()
            if (value != "relevance" or self.q) and (value != "rating" or self.path in RATED_PATHS)
        ]

    def url(self, **more: Any) -> str:
        query = {**self.params(), **more}
        return self.path + ("?" + urlencode(query, doseq=True) if query else "")

    def facet_list(self) -> list[dict[str, Any]]:
        """Skills to tick, with how many results have each: the chosen ones first."""
        shown = [
            {"slug": slug, "name": self.names.skill(slug), "count": self.facets.get(slug, 0), "checked": True}
            for slug in self.skills
        ]
        for slug, count in self.facets.items():
            if len(shown) >= FACETS_SHOWN + len(self.skills):
                break
            if slug not in self.skills:
                shown.append({"slug": slug, "name": self.names.skill(slug), "count": count, "checked": False})
        return shown

    def context(self, page: int, limit: int) -> dict[str, Any]:
        first = (page - 1) * limit + 1
        next_url = None
        if self.next_cursor:
            more: dict[str, Any] = {"cursor": self.next_cursor, "page": page + 1}
            if limit != PAGE_SIZE:
                more["limit"] = limit
            next_url = self.url(**more)
        filtered = bool(self.categories or self.skills or self.extra)
        return {
            "items": self.items,
            "total": self.total,
            "first": first,
            "last": first + len(self.items) - 1,
            "page": page,
            "next_url": next_url,
            "first_url": self.url(),
            "clear_url": self.path + ("?" + urlencode({"q": self.q}) if self.q else ""),
            "q": self.q,
            "sort_options": self.sort_options(),
            "facets": self.facet_list(),
            "typed_skills": self.typed,
            "filters": {"category": self.categories, **self.extra},
            "filtered": filtered,
            "errors": self.errors,
            "tree": self.names.tree,
            "open_groups": {
                top.slug
                for top in self.names.tree
                if top.slug in self.categories or any(child.slug in self.categories for child in top.children)
            },
        }


async def _start(
    session: AsyncSession,
    site: Site,
    path: str,
    *,
    q: str | None,
    category: list[str] | None,
    skill: list[str] | None,
    skills: str | None,
    sort: str | None,
) -> Browse:
    """Read the filters every browse page shares; unknown skills become a field error."""
    names = await load_names(session, site)
    browse = Browse(
        path=path,
        names=names,
        q=" ".join((q or "").split())[:300],
        categories=[slug for slug in dict.fromkeys(category or []) if slug in names.categories],
    )
    rated = sort != "rating" or path in RATED_PATHS
    allowed = sort in SORTS and (sort != "relevance" or browse.q) and rated
    browse.sort = sort if sort and allowed else browse.default_sort
    typed = [slug for slug in skill or [] if slug in names.skills]
    if skills and skills.strip():
        try:
            resolved = await ProfileService(site).resolve_skills(session, split_list(skills), field="skills")
            typed += [found.slug for found in resolved]
        except ValidationException as exc:
            browse.typed = skills
            browse.errors.update(plain_errors(errors_of(exc, default_field="skills")))
    browse.skills = list(dict.fromkeys(typed))
    return browse


async def _search(session: AsyncSession, site: Site, browse: Browse, query: SearchQuery) -> list[uuid.UUID]:
    """Run ``query`` for ``browse``: the ids found, in order; a cursor that is not ours is a
    field error."""
    try:
        found = await site.plugins.search_backend(site).search(query, session=session)
    except ValueError:
        browse.errors["cursor"] = "This cursor is not valid; start again without one."
        return []
    browse.total = found.total or 0
    browse.next_cursor = found.next_cursor
    browse.facets = found.skill_facets
    return found.ids


def _sidebar(site: Site, browse: Browse, values: dict[str, Any], picker: SkillChoices) -> dict[str, Markup]:
    """The category and skill filters, rendered once per what they show
    (:meth:`~mercato.core.templating.Templates.fragment`): most visitors see the same few."""
    chosen = values["filters"]["category"]
    facets = values["facets"]
    typed = values["typed_skills"]
    return {
        "category_filter": site.templates.fragment(
            "discovery/_categories.html",
            (browse.names.key, tuple(chosen)),
            {"tree": values["tree"], "open_groups": values["open_groups"], "filters": {"category": chosen}},
        ),
        "skill_filter": site.templates.fragment(
            "discovery/_facets.html",
            (tuple(tuple(facet.values()) for facet in facets), typed, browse.errors.get("skills"),
             picker.options_html),
            {"facets": facets, "typed_skills": typed, "skills": picker, "errors": browse.errors},
        ),
    }


async def _query(
    session: AsyncSession, browse: Browse, kind: Kind, limit: int, cursor: str | None
) -> SearchQuery:
    sort: Sort = browse.sort  # type: ignore[assignment]
    return SearchQuery(
        kind=kind,
        q=browse.q,
        skills=browse.skills,
        categories=await expand_categories(session, browse.categories),
        sort=sort,
        limit=limit,
        cursor=cursor,
        facets=True,
    )


_PROJECTS = Project.__table__.c
CARD_ROWS = select(
    _PROJECTS.id, _PROJECTS.client_id, _PROJECTS.title, _PROJECTS.status, _PROJECTS.visibility,
    _PROJECTS.category_slug, _PROJECTS.skills, _PROJECTS.budget_type, _PROJECTS.budget_min,
    _PROJECTS.budget_max, _PROJECTS.currency, _PROJECTS.proposal_count, _PROJECTS.published_at,
    _PROJECTS.created_at, _PROJECTS.updated_at, _PROJECTS.hidden_at,
).where(_PROJECTS.id.in_(bindparam("ids", expanding=True)))
"""What a card's cache key and the access check need: everything but the text. Built once
(a Core statement, its cache key computed once)."""


async def _project_cards(
    site: Site, session: AsyncSession, ids: list[uuid.UUID], viewer: uuid.UUID | None, names: Names
) -> list[dict[str, Any]]:
    """The cards of the projects ``ids`` that ``viewer`` may see, in order: ``{"html": ...}``.

    A card is rendered once per look and kept per project (:data:`CARD_CACHE_SIZE`) with
    what it was rendered from: the short columns (``updated_at`` stands for the description),
    the "posted 5 minutes ago" text and the category and skill names. So a page reads the
    short columns of its projects, and whole projects only for cards that changed or were not
    seen before. A theme's own ``project_card`` macro is the one used; a card shows nothing
    that depends on the viewer.
    """
    if not ids:
        return []
    projects = ProjectService(site)
    rows = {row.id: row for row in await session.execute(CARD_ROWS, {"ids": ids})}
    shown = [rows[i] for i in ids if i in rows and await projects.can_view(session, rows[i], viewer)]
    cache: OrderedDict[uuid.UUID, tuple[tuple[Any, ...], Markup]] = site.state.setdefault(
        "discovery.cards", OrderedDict()
    )
    looks = {
        row.id: (tuple(row), project_pages.time_ago(row.published_at or row.created_at), names.key)
        for row in shown
    }
    missing = [i for i, look in looks.items() if (held := cache.get(i)) is None or held[0] != look]
    if missing:
        loaded = (await session.scalars(select(Project).where(Project.id.in_(missing)))).all()
        macro = site.templates.env.get_template("projects/_macros.html").module.project_card  # type: ignore[attr-defined]
        for project in await projects.outs(session, loaded, None, files=False, client_names={}):
            html = macro(project_pages.card(project, names), project_pages.STATUS_LABELS)
            cache[project.id] = (looks[project.id], html)
    items: list[dict[str, Any]] = []
    for row in shown:
        cache.move_to_end(row.id)
        items.append({"html": cache[row.id][1]})
    while len(cache) > CARD_CACHE_SIZE:
        cache.popitem(last=False)
    return items


@get("/projects", include_in_schema=False, name="projects:browse")
async def browse_projects(
    request: AnyRequest,
    site: NamedDependency[Site],
    q: Text = None,
    category: Slugs = None,
    skill: Slugs = None,
    skills: Text = None,
    budget_type: Text = None,
    sort: Text = None,
    cursor: Text = None,
    page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
    limit: Annotated[int, QueryParameter(ge=1, le=50)] = PAGE_SIZE,
) -> Template:
    """Open public projects: newest first, or best match for a search."""
    principal = principal_of(request)
    viewer = principal.user_id if principal else None
    async with site.db.reading() as session:
        browse = await _start(
            session, site, "/projects", q=q, category=category, skill=skill, skills=skills, sort=sort
        )
        kind = budget_type if budget_type in project_pages.BUDGET_TYPES else ""
        browse.extra = {"budget_type": kind} if kind else {}
        if not browse.errors:
            query = await _query(session, browse, "project", limit, cursor)
            query.hourly = {"fixed": False, "hourly": True}.get(kind)
            found = await _search(session, site, browse, query)
            browse.items = await _project_cards(site, session, found, viewer, browse.names)
        picker = await skill_names(session, site)
    values = browse.context(page, limit)
    values.update(_sidebar(site, browse, values, picker))
    values["filters"].setdefault("budget_type", "")
    return await project_pages.render(
        request,
        site,
        "browse.html",
        {**project_pages.helpers(browse.names), **values, "skills": picker},
        status_code=400 if browse.errors else 200,
    )


@get("/services", include_in_schema=False, name="services:browse")
async def browse_services(
    request: AnyRequest,
    site: NamedDependency[Site],
    q: Text = None,
    category: Slugs = None,
    skill: Slugs = None,
    skills: Text = None,
    max_price: Annotated[str | None, QueryParameter(max_length=20)] = None,
    max_delivery_days: Annotated[str | None, QueryParameter(max_length=4)] = None,
    min_rating: Annotated[str | None, QueryParameter(max_length=4)] = None,
    sort: Text = None,
    cursor: Text = None,
    page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
    limit: Annotated[int, QueryParameter(ge=1, le=50)] = PAGE_SIZE,
) -> Template:
    """Published services: newest first, or best match for a search."""
    principal = principal_of(request)
    viewer = principal.user_id if principal else None
    price_limit: int | None = None
    money, problem = parse_rate(max_price or "", "USD", maximum=service_pages.MAX_PRICE_MINOR)
    days = max_delivery_days if max_delivery_days in dict(service_pages.DELIVERY_FILTERS) else ""
    rating = min_rating if min_rating in dict(service_pages.RATING_FILTERS) else ""
    async with site.db.reading() as session:
        browse = await _start(
            session, site, "/services", q=q, category=category, skill=skill, skills=skills, sort=sort
        )
        typed = {"max_price": (max_price or "").strip(), "max_delivery_days": days or "",
                 "min_rating": rating}
        browse.extra = {key: value for key, value in typed.items() if value}
        if problem:
            browse.errors["max_price"] = problem
        elif money is not None:
            price_limit = money["amount"]
        if not browse.errors:
            query = await _query(session, browse, "service", limit, cursor)
            query.price_max = price_limit
            query.max_delivery_days = int(days) if days else None
            query.min_rating = float(rating) if rating else None
            found = await _search(session, site, browse, query)
            services = await load(site, session, "service", found, viewer)
            browse.items = [service_pages.card(service, browse.names) for service in services]
        picker = await skill_names(session, site)
    values = browse.context(page, limit)
    values.update(_sidebar(site, browse, values, picker))
    values["filters"].setdefault("max_price", "")
    values["filters"].setdefault("max_delivery_days", "")
    values["filters"].setdefault("min_rating", "")
    return await service_pages.render(
        request,
        site,
        "browse.html",
        {
            **service_pages.helpers(browse.names),
            **values,
            "skills": picker,
            "delivery_filters": service_pages.DELIVERY_FILTERS,
            "rating_filters": service_pages.RATING_FILTERS,
        },
        status_code=400 if browse.errors else 200,
    )


@get("/developers", include_in_schema=False, name="developers:browse")
async def browse_developers(
    request: AnyRequest,
    site: NamedDependency[Site],
    q: Text = None,
    skill: Slugs = None,
    skills: Text = None,
    max_rate: Annotated[str | None, QueryParameter(max_length=20)] = None,
    min_rating: Annotated[str | None, QueryParameter(max_length=4)] = None,
    sort: Text = None,
    cursor: Text = None,
    page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
    limit: Annotated[int, QueryParameter(ge=1, le=50)] = PAGE_SIZE,
) -> Template:
    """Active developers: newest first, best match for a search, or top rated; cards carry
    their rating, job success, skills and rate."""
    principal = principal_of(request)
    viewer = principal.user_id if principal else None
    rate_limit: int | None = None
    money, problem = parse_rate(max_rate or "", "USD", maximum=service_pages.MAX_PRICE_MINOR)
    rating = min_rating if min_rating in dict(service_pages.RATING_FILTERS) else ""
    async with site.db.reading() as session:
        browse = await _start(session, site, "/developers", q=q, category=None, skill=skill, skills=skills,
                              sort=sort)
        typed = {"max_rate": (max_rate or "").strip(), "min_rating": rating}
        browse.extra = {key: value for key, value in typed.items() if value}
        if problem:
            browse.errors["max_rate"] = problem
        elif money is not None:
            rate_limit = money["amount"]
        if not browse.errors:
            query = await _query(session, browse, "developer", limit, cursor)
            query.price_max = rate_limit
            query.min_rating = float(rating) if rating else None
            found = await _search(session, site, browse, query)
            people = await load(site, session, "developer", found, viewer)
            browse.items = [developer_card(person, browse.names) for person in people]
        picker = await skill_names(session, site)
    values = browse.context(page, limit)
    values.update(_sidebar(site, browse, values, picker))
    values["filters"].setdefault("max_rate", "")
    values["filters"].setdefault("min_rating", "")
    return await site.templates.page(
        request, "discovery/developers.html",
        {**values, "skills": picker, "rating_filters": service_pages.RATING_FILTERS},
        status_code=400 if browse.errors else 200,
    )


def developer_card(person: Any, names: Names) -> dict[str, Any]:
    """What a developer's card shows (``person``: a :class:`~mercato.core.accounts.schemas.PublicUser`)."""
    profile = person.profile
    return {
        "person": person,
        "url": f"/users/{person.id}",
        "reputation": person.reputation.get("developer"),
        "rate": format_rate(profile.hourly_rate),
        "skills": [skill.name for skill in profile.skills][:6],
        "availability": profile.availability,
    }


PAGE_ROUTES: list[Any] = [browse_projects, browse_services, browse_developers]
"""The browse pages the discovery plugin registers."""
