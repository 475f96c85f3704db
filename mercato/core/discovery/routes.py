"""The search API. The backend returns ids; the objects are loaded through their domains,
which check again who may see them (an index is never the last word on access)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.schemas import PublicUser
from mercato.core.catalog.services import expand_categories
from mercato.core.discovery.services import find
from mercato.core.errors import field_error
from mercato.core.listings.schemas import ServiceOut
from mercato.core.pagination import Cursor
from mercato.core.projects.schemas import ProjectOut
from mercato.core.search import SearchQuery
from mercato.core.site import Site

Slugs = Annotated[list[str] | None, QueryParameter(max_items=20)]
KINDS = {"projects": "project", "services": "service", "developers": "developer"}


class SearchPage(msgspec.Struct, kw_only=True):
    type: str
    total: int | None
    items: list[ProjectOut | ServiceOut | PublicUser]
    """Projects, services or developers, as ``type`` says."""
    next_cursor: str | None
    skill_facets: dict[str, int]
    """Skill slug → matching results (when ``facets=true``)."""


@get("/api/v1/search", tags=["search"], summary="Search projects, services or developers")
async def search(
    request: Request[Any, Any, Any],
    site: NamedDependency[Site],
    type: FromQuery[Literal["projects", "services", "developers"]] = "projects",
    q: Annotated[str, QueryParameter(max_length=300)] = "",
    skill: Slugs = None,
    category: Slugs = None,
    min_price: Annotated[int | None, QueryParameter(ge=0)] = None,
    max_price: Annotated[int | None, QueryParameter(ge=0)] = None,
    currency: Annotated[str | None, QueryParameter(pattern=r"^[A-Z]{3}$")] = None,
    hourly: FromQuery[bool | None] = None,
    max_delivery_days: Annotated[int | None, QueryParameter(ge=1, le=365)] = None,
    min_rating: Annotated[float | None, QueryParameter(ge=1, le=5)] = None,
    sort: FromQuery[Literal["relevance", "newest", "price_asc", "price_desc", "rating"]] = "relevance",
    limit: Annotated[int, QueryParameter(ge=1, le=50)] = 20,
    cursor: Cursor = None,
    facets: FromQuery[bool] = False,
) -> SearchPage:
    """Prices are minor units (cents). ``category`` includes its children."""
    principal = principal_of(request)
    viewer = principal.user_id if principal else None
    kind = KINDS[type]
    async with site.db.reading() as session:
        query = SearchQuery(
            kind=kind,  # type: ignore[arg-type]
            q=q,
            skills=skill or [],
            categories=await expand_categories(session, category or []),
            currency=currency,
            price_min=min_price,
            price_max=max_price,
            hourly=hourly,
            max_delivery_days=max_delivery_days,
            min_rating=min_rating,
            sort=sort,
            limit=limit,
            cursor=cursor,
            facets=facets,
        )
        try:
            items, found = await find(site, session, query, viewer)
        except ValueError:
            raise field_error("cursor", "This cursor is not valid; start again without one.") from None
    return SearchPage(
        type=type,
        total=found.total,
        items=items,
        next_cursor=found.next_cursor,
        skill_facets=found.skill_facets,
    )
