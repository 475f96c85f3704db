"""Search: the protocol a search backend implements (``get_search_backend``) and the
documents and queries it deals in.

Domains describe what can be found as :class:`SearchDocument` objects; a backend (the
built-in ``search_sql`` on SQLite FTS5 / PostgreSQL full text, or an external engine in a
plugin) keeps them and answers :class:`SearchQuery`. Backends are kept current by event
handlers on the JetStream backbone, and rebuilt by ``mercato search reindex``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal, Protocol, runtime_checkable

import msgspec

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

Kind = Literal["project", "service", "developer"]
Sort = Literal["relevance", "newest", "price_asc", "price_desc", "rating"]


class SearchDocument(msgspec.Struct, kw_only=True):
    """One findable thing, flattened for search."""

    kind: Kind
    id: uuid.UUID
    title: str
    text: str
    """Everything else worth matching: description, headline, bio, skill names."""
    skills: list[str] = msgspec.field(default_factory=list)
    """Skill slugs (filters and facets)."""
    category: str | None = None
    """Category slug; a filter on a parent category also matches its children."""
    currency: str | None = None
    price_min: int | None = None
    """Minor units: a project's budget range, a service's cheapest and dearest package, a
    developer's hourly rate (min = max)."""
    price_max: int | None = None
    hourly: bool = False
    """The prices are hourly rates (hourly projects, developers)."""
    delivery_days: int | None = None
    """Services: the fastest package."""
    rating: float | None = None
    created_at: datetime
    owner_id: uuid.UUID | None = None


class SearchQuery(msgspec.Struct, kw_only=True):
    """What someone looks for."""

    kind: Kind
    q: str = ""
    skills: list[str] = msgspec.field(default_factory=list)
    """Every listed skill must match."""
    categories: list[str] = msgspec.field(default_factory=list)
    """Any of these category slugs (callers expand a parent into its children)."""
    currency: str | None = None
    price_min: int | None = None
    """Documents whose price range reaches at least this (minor units)."""
    price_max: int | None = None
    """Documents whose price range starts at most at this."""
    hourly: bool | None = None
    max_delivery_days: int | None = None
    min_rating: float | None = None
    sort: Sort = "relevance"
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    cursor: str | None = None
    facets: bool = False
    """Also count matching documents per skill."""


class SearchResults(msgspec.Struct, kw_only=True):
    ids: list[uuid.UUID]
    """Matching ids in order; the caller loads the objects (and checks access)."""
    next_cursor: str | None = None
    total: int | None = None
    skill_facets: dict[str, int] = msgspec.field(default_factory=dict)
    """Skill slug → matching documents (when ``facets`` was asked)."""


@runtime_checkable
class SearchBackend(Protocol):
    """Keeps documents and answers queries. All methods are idempotent."""

    async def index(self, documents: list[SearchDocument]) -> None:
        """Add or replace these documents."""
        ...

    async def remove(self, kind: Kind, ids: list[uuid.UUID]) -> None:
        """Forget these documents (missing ones are fine)."""
        ...

    async def clear(self, kind: Kind | None = None) -> None:
        """Forget every document (of ``kind``)."""
        ...

    async def search(self, query: SearchQuery, *, session: AsyncSession | None = None) -> SearchResults:
        """Matching ids, best first for ``relevance``; a bad cursor is a ``ValueError``.

        ``session`` is the caller's open database session: a backend that lives in the
        site's database runs its queries there (one connection per request); others ignore it.
        """
        ...
