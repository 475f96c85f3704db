"""Building :class:`~mercato.core.search.SearchDocument` objects from the domains' tables.

:data:`DOCUMENT_BUILDERS` maps each kind to a :class:`DocumentBuilder`: a query for the ids
of everything of that kind that should be findable, and a function turning ids into
documents. The event handlers (``handlers.py``) and ``mercato search reindex`` use only
this registry, so they work with whatever search backend wins ``get_search_backend``.

Adding a kind (projects, services) next to developers:

1. write ``async def project_documents(session, ids) -> list[SearchDocument]``: load the
   rows of ``ids`` in a few queries (never one per id) and return a document for each one
   that should be findable now (published, not deleted, owner active); leave the others
   out, and the caller removes them from the index;
2. write ``def project_ids() -> Select[Any]`` (one column: the id): the ids of every findable one
   (``mercato search reindex`` walks them in batches of 500);
3. add ``"project": DocumentBuilder(build=project_documents, ids=project_ids)`` to
   :data:`DOCUMENT_BUILDERS`, and an event handler in ``handlers.py`` that calls
   :func:`~mercato.plugins.search_sql.handlers.refresh_documents` with the ids an event
   touched (created, updated, published, closed, deleted: every change rebuilds from the
   current rows, so events arriving out of order do no harm).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select

from mercato.core.accounts.models import Profile, Skill, User, UserSkill, UserStatus
from mercato.core.listings.search import service_documents, service_ids
from mercato.core.projects.search import project_documents, project_ids
from mercato.core.reputation.models import reputation_of
from mercato.core.search import Kind, SearchDocument

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncSession


BuildFunc = Callable[["AsyncSession", Sequence[uuid.UUID]], Awaitable[list[SearchDocument]]]


@dataclass(frozen=True)
class DocumentBuilder:
    """How one kind of document is built."""

    build: BuildFunc
    """``await build(session, ids)``: documents for those of ``ids`` that should be findable."""
    ids: Callable[[], Select[Any]]
    """A query for the ids of every findable thing of the kind, in a stable order."""


# ---------------------------------------------------------------------------
# Developers
# ---------------------------------------------------------------------------


def _findable_developer() -> list[ColumnElement[bool]]:
    return [User.is_developer.is_(True), User.status == UserStatus.ACTIVE]


def developer_ids() -> Select[Any]:
    """Every active developer, oldest first."""
    return select(User.id).where(*_findable_developer()).order_by(User.created_at, User.id)


async def developer_documents(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> list[SearchDocument]:
    """Documents for those of ``user_ids`` who are active developers.

    Title: the display name; text: headline, bio and skill names; skills: slugs in the
    person's order; price: the hourly rate (``hourly``, min = max) in the profile currency;
    rating: their average as a developer.
    """
    if not user_ids:
        return []
    rows = (await session.execute(
        select(User, Profile)
        .outerjoin(Profile, Profile.user_id == User.id)
        .where(User.id.in_(list(user_ids)), *_findable_developer())
    )).all()
    if not rows:
        return []
    skills: dict[uuid.UUID, list[tuple[str, str]]] = {}
    skill_rows = await session.execute(
        select(UserSkill.user_id, Skill.slug, Skill.name)
        .join(Skill, Skill.slug == UserSkill.skill_slug)
        .where(UserSkill.user_id.in_([user.id for user, _ in rows]))
        .order_by(UserSkill.user_id, UserSkill.position)
    )
    for user_id, slug, name in skill_rows:
        skills.setdefault(user_id, []).append((slug, name))
    reputations = await reputation_of(session, [user.id for user, _ in rows])
    documents = []
    for user, profile in rows:
        own = skills.get(user.id, [])
        headline = profile.headline if profile else ""
        bio = profile.bio if profile else ""
        rate = profile.hourly_rate if profile else None
        documents.append(SearchDocument(
            kind="developer", id=user.id, title=user.display_name,
            text="\n".join(part for part in (headline, bio, " ".join(name for _, name in own)) if part),
            skills=[slug for slug, _ in own],
            currency=profile.currency if profile is not None and rate is not None else None,
            price_min=rate, price_max=rate, hourly=True,
            rating=reputations[user.id].rating_avg if user.id in reputations else None,
            created_at=user.created_at, owner_id=user.id,
        ))
    return documents


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------


DOCUMENT_BUILDERS: dict[Kind, DocumentBuilder] = {
    "developer": DocumentBuilder(build=developer_documents, ids=developer_ids),
    "project": DocumentBuilder(build=project_documents, ids=project_ids),
    "service": DocumentBuilder(build=service_documents, ids=service_ids),
}
"""Kind → builder (see the module docstring to add one)."""


def builder_for(kind: Kind) -> DocumentBuilder:
    """The builder of ``kind``; ``LookupError`` when no domain registered one yet."""
    try:
        return DOCUMENT_BUILDERS[kind]
    except KeyError:
        raise LookupError(f"no search documents are built for `{kind}` yet") from None


async def all_ids(session: AsyncSession, kind: Kind) -> list[uuid.UUID]:
    """The ids of every findable document of ``kind``."""
    return list((await session.scalars(builder_for(kind).ids())).all())


async def build_documents(session: AsyncSession, kind: Kind,
                          ids: Sequence[uuid.UUID]) -> list[SearchDocument]:
    """Documents of ``kind`` for those of ``ids`` that should be findable."""
    return await builder_for(kind).build(session, ids)
