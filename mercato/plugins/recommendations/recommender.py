"""The built-in recommender: skill overlap (through the taxonomy's aliases), budget or price
fit, reputation and freshness (see :mod:`.signals`).

Candidates come from the database, bounded: the newest :data:`PER_SKILL` open public projects
(or published services) naming each of the viewer's skills, read from the candidate index
(:mod:`.models`), or the developers listing the most of a project's skills. They are then
re-checked against their own rows and scored in Python. A request for a developer runs five
short indexed queries whatever the size of the marketplace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, inspect, select, union_all

from mercato.core.accounts.models import Profile, User, UserSkill, UserStatus
from mercato.core.db import utcnow
from mercato.core.listings.models import Listing, ListingPackage, ListingStatus
from mercato.core.memo import memo
from mercato.core.projects.models import Project, ProjectStatus, Proposal
from mercato.core.recommend import Suggestion

from . import signals
from .index import taxonomy
from .models import SkillPosting
from .signals import Signal, Taxonomy

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

try:  # reputation is part of newer cores; without it, the signal stays neutral
    from mercato.core.reputation.models import Reputation
except ImportError:  # pragma: no cover - depends on the core's version
    Reputation = None  # type: ignore[assignment,misc]

PER_SKILL = 200
"""Newest candidates read per skill of the viewer."""
MAX_CANDIDATES = 800
"""Candidates scored at most per request (``PER_SKILL`` shrinks for long skill lists)."""
MAX_DEVELOPERS = 300
"""Developers scored at most for one project: those listing the most of its skills."""
DEVELOPER_WEIGHTS = {"skills": 0.6, "budget": 0.2, "reputation": 0.2}
SERVICE_WEIGHTS = {"skills": 0.5, "budget": 0.15, "reputation": 0.15, "freshness": 0.2}


class SkillRecommender:
    """:class:`~mercato.core.recommend.Recommender` on skills, budget, reputation and freshness."""

    id = "recommendations"

    def __init__(self, site: Site) -> None:
        self.site = site

    # -- shared lookups ------------------------------------------------------------
    async def taxonomy(self, session: AsyncSession) -> Taxonomy:
        async def load() -> Taxonomy:
            return await taxonomy(session)

        return await memo(self.site, "recommendations:taxonomy", load, keep=lambda t: bool(t.names))

    async def reputations(
        self, session: AsyncSession, user_ids: Iterable[uuid.UUID], role: str
    ) -> dict[uuid.UUID, tuple[float | None, int]]:
        """``{user_id: (rating_avg, rating_count)}`` in ``role``; empty where the site keeps none."""
        ids = list(set(user_ids))
        if not ids or Reputation is None or not await self._has_reputation(session):
            return {}
        rows = await session.execute(
            select(Reputation.user_id, Reputation.rating_avg, Reputation.rating_count).where(
                Reputation.user_id.in_(ids), Reputation.role == role
            )
        )
        return {user_id: (avg, count) for user_id, avg, count in rows}

    async def _has_reputation(self, session: AsyncSession) -> bool:
        key = "recommendations:has_reputation"
        if key not in self.site.state:
            table = Reputation.__tablename__

            def has_table(sync_session: Any) -> bool:
                return bool(inspect(sync_session.connection()).has_table(table))

            self.site.state[key] = await session.run_sync(has_table)
        return bool(self.site.state[key])

    async def developer_skills(
        self, session: AsyncSession, user_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        rows = await session.execute(
            select(UserSkill.user_id, UserSkill.skill_slug)
            .where(UserSkill.user_id.in_(user_ids))
            .order_by(UserSkill.user_id, UserSkill.position)
        )
        skills: dict[uuid.UUID, list[str]] = {user_id: [] for user_id in user_ids}
        for user_id, slug in rows:
            skills[user_id].append(slug)
        return skills

    async def _newest_postings(self, session: AsyncSession, kind: str, slugs: list[str]) -> list[uuid.UUID]:
        """Ids of the newest items of ``kind`` naming any of ``slugs``, each once."""
        if not slugs:
            return []
        per_skill = max(20, min(PER_SKILL, MAX_CANDIDATES // len(slugs)))
        parts = [
            select(SkillPosting.item_id)
            .where(SkillPosting.kind == kind, SkillPosting.skill_slug == slug)
            .order_by(SkillPosting.published_at.desc())
            .limit(per_skill)
            .subquery()
            for slug in slugs[:40]
        ]
        query = union_all(*(select(part.c.item_id) for part in parts))
        return list(dict.fromkeys((await session.execute(query)).scalars()))

    # -- projects for a developer ----------------------------------------------------
    async def projects_for_developer(
        self, session: AsyncSession, developer_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]:
        """Open public projects for ``developer_id``: not their own, not ones they bid on."""
        skills = await self.taxonomy(session)
        mine = skills.slugs(
            (
                await session.scalars(
                    select(UserSkill.skill_slug)
                    .where(UserSkill.user_id == developer_id)
                    .order_by(UserSkill.position)
                )
            ).all()
        )
        profile = (
            await session.execute(
                select(Profile.hourly_rate, Profile.currency).where(Profile.user_id == developer_id)
            )
        ).first()
        rate, rate_currency = (profile.hourly_rate, profile.currency) if profile else (None, "USD")

        columns = (
            Project.id,
            Project.client_id,
            Project.skills,
            Project.budget_type,
            Project.budget_max,
            Project.currency,
            Project.published_at,
        )
        findable = (
            Project.status == ProjectStatus.OPEN,
            Project.visibility == "public",
            Project.client_id != developer_id,
        )
        ids = await self._newest_postings(session, "project", mine)
        if ids:
            query = select(*columns).where(Project.id.in_(ids), *findable)
        else:  # no skills (or none anyone asks for yet): the newest projects
            query = (
                select(*columns).where(*findable).order_by(Project.published_at.desc()).limit(MAX_CANDIDATES)
            )
        projects = (await session.execute(query)).all()
        if not projects:
            return []
        bid_on = set(
            (
                await session.scalars(
                    select(Proposal.project_id).where(
                        Proposal.developer_id == developer_id,
                        Proposal.project_id.in_([p.id for p in projects]),
                    )
                )
            ).all()
        )
        projects = [p for p in projects if p.id not in bid_on]
        ratings = await self.reputations(session, (p.client_id for p in projects), "client")
        now = utcnow()
        suggestions = []
        for p in projects:
            score, reasons = signals.blend(
                {
                    "skills": signals.skill_match(mine, skills.slugs(p.skills or [])),
                    "budget": signals.rate_fits_budget(
                        rate,
                        rate_currency,
                        hourly=p.budget_type == "hourly",
                        budget_max=p.budget_max,
                        currency=p.currency,
                        project_side=True,
                    ),
                    "reputation": signals.reputation(
                        *ratings.get(p.client_id, (None, 0)), whose="Client rated"
                    ),
                    "freshness": signals.freshness(p.published_at, now),
                }
            )
            suggestions.append(Suggestion(id=p.id, score=score, reasons=reasons))
        return _best(suggestions, limit, {p.id: p.published_at for p in projects})

    # -- developers for a project ----------------------------------------------------
    async def developers_for_project(
        self, session: AsyncSession, project_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]:
        """Active developers listing the project's skills, best first; not its client, not those
        who already sent a proposal."""
        project = await session.get(Project, project_id)
        if project is None:
            return []
        skills = await self.taxonomy(session)
        wanted = skills.slugs(project.skills or [])
        if not wanted:
            return []
        n = func.count()
        candidates = list(
            (
                await session.scalars(
                    select(UserSkill.user_id)
                    .join(User, User.id == UserSkill.user_id)
                    .where(
                        UserSkill.skill_slug.in_(wanted),
                        User.is_developer.is_(True),
                        User.status == UserStatus.ACTIVE,
                        User.id != project.client_id,
                    )
                    .group_by(UserSkill.user_id)
                    .order_by(n.desc(), UserSkill.user_id)
                    .limit(MAX_DEVELOPERS)
                )
            ).all()
        )
        if not candidates:
            return []
        proposed = set(
            (
                await session.scalars(
                    select(Proposal.developer_id).where(
                        Proposal.project_id == project_id, Proposal.developer_id.in_(candidates)
                    )
                )
            ).all()
        )
        candidates = [c for c in candidates if c not in proposed]
        offered = await self.developer_skills(session, candidates)
        rates = {
            row.user_id: (row.hourly_rate, row.currency)
            for row in await session.execute(
                select(Profile.user_id, Profile.hourly_rate, Profile.currency).where(
                    Profile.user_id.in_(candidates)
                )
            )
        }
        ratings = await self.reputations(session, candidates, "developer")
        suggestions = []
        for developer_id in candidates:
            rate, currency = rates.get(developer_id, (None, "USD"))
            score, reasons = signals.blend(
                {
                    "skills": signals.skill_match(
                        wanted,
                        skills.slugs(offered[developer_id]),
                        reason="Has {shared} of the {total} {skills} you need",
                    ),
                    "budget": signals.rate_fits_budget(
                        rate,
                        currency,
                        hourly=project.budget_type == "hourly",
                        budget_max=project.budget_max,
                        currency=project.currency,
                        project_side=False,
                    ),
                    "reputation": signals.reputation(*ratings.get(developer_id, (None, 0))),
                },
                DEVELOPER_WEIGHTS,
            )
            suggestions.append(Suggestion(id=developer_id, score=score, reasons=reasons))
        return _best(suggestions, limit)

    # -- services like a service -----------------------------------------------------
    async def similar_services(
        self, session: AsyncSession, service_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]:
        """Other developers' published services sharing skills or the category."""
        listing = await session.get(Listing, service_id)
        if listing is None:
            return []
        skills = await self.taxonomy(session)
        own = skills.slugs(listing.skills or [])
        ids = set(await self._newest_postings(session, "service", own))
        ids |= set(
            (
                await session.scalars(
                    select(Listing.id)
                    .where(
                        Listing.category_slug == listing.category_slug,
                        Listing.status == ListingStatus.PUBLISHED,
                    )
                    .order_by(Listing.published_at.desc())
                    .limit(PER_SKILL)
                )
            ).all()
        )
        ids.discard(service_id)
        if not ids:
            return []
        others = (
            await session.execute(
                select(
                    Listing.id,
                    Listing.developer_id,
                    Listing.skills,
                    Listing.category_slug,
                    Listing.published_at,
                ).where(
                    Listing.id.in_(ids),
                    Listing.status == ListingStatus.PUBLISHED,
                    Listing.developer_id != listing.developer_id,
                )
            )
        ).all()
        prices = await _prices(session, [service_id, *(o.id for o in others)])
        price, currency = prices.get(service_id, (None, ""))
        ratings = await self.reputations(session, (o.developer_id for o in others), "developer")
        now = utcnow()
        suggestions = []
        for other in others:
            match = signals.skill_match(
                own, skills.slugs(other.skills or []), reason="Shares {shared} of its {total} {skills}"
            )
            if other.category_slug == listing.category_slug:
                match = Signal(0.25 + 0.75 * match.value, match.reason or "In the same category")
            score, reasons = signals.blend(
                {
                    "skills": match,
                    "budget": signals.price_similarity(
                        price, *prices.get(other.id, (None, "")), currency=currency
                    ),
                    "reputation": signals.reputation(*ratings.get(other.developer_id, (None, 0))),
                    "freshness": signals.freshness(other.published_at, now),
                },
                SERVICE_WEIGHTS,
            )
            suggestions.append(Suggestion(id=other.id, score=score, reasons=reasons))
        return _best(suggestions, limit)


async def _prices(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, str]]:
    """Each listing's lowest package price and its currency."""
    rows = await session.execute(
        select(ListingPackage.listing_id, func.min(ListingPackage.price), func.min(ListingPackage.currency))
        .where(ListingPackage.listing_id.in_(ids))
        .group_by(ListingPackage.listing_id)
    )
    return {listing_id: (price, currency) for listing_id, price, currency in rows}


def _best(
    suggestions: list[Suggestion], limit: int, newer: dict[uuid.UUID, datetime | None] | None = None
) -> list[Suggestion]:
    """The ``limit`` best, ties broken by the newer item, then by id (a stable order)."""
    newer = newer or {}

    def key(s: Suggestion) -> tuple[float, float, str]:
        moment = newer.get(s.id)
        return (-s.score, -(moment.timestamp() if moment else 0.0), str(s.id))

    return sorted(suggestions, key=key)[:limit]
