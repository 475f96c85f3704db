"""The semantic recommender: the next recommender's candidates, re-ranked by what their texts
mean.

It asks the recommender that would answer without it (the built-in ``recommendations``,
through ``get_recommender``) for :data:`POOL` times as many suggestions, then blends each
one's score with the cosine similarity of the stored embeddings (:data:`MEANING_WEIGHT`) and,
when the texts are close, says so first among the reasons. Without the viewer's embedding it
passes the candidates on unchanged.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from mercato.core.recommend import Recommender, Suggestion

from .embeddings import vectors

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

POOL = 5
"""Candidates asked of the next recommender per suggestion returned (at least 50)."""
MEANING_WEIGHT = 0.45
"""Share of the score that comes from meaning; the rest is the next recommender's."""
CLOSE = 0.35
"""Cosine similarity from which the texts count as close (and the reason says so)."""


class SemanticRecommender:
    """:class:`~mercato.core.recommend.Recommender` blending meaning with another's signals."""

    id = "semantic_recommendations"

    def __init__(self, base: Recommender) -> None:
        self.base = base

    async def _rerank(
        self,
        session: AsyncSession,
        candidates: list[Suggestion],
        viewer: tuple[str, uuid.UUID],
        kind: str,
        limit: int,
        reason: str,
    ) -> list[Suggestion]:
        own = (await vectors(session, viewer[0], [viewer[1]])).get(viewer[1])
        if own is None or not candidates:
            return candidates[:limit]
        found = await vectors(session, kind, [c.id for c in candidates])
        top = max((c.score for c in candidates), default=0.0) or 1.0
        ranked = []
        for c in candidates:
            vector = found.get(c.id)
            cosine = float(np.dot(own, vector)) if vector is not None else 0.0
            score = (1 - MEANING_WEIGHT) * c.score / top + MEANING_WEIGHT * max(0.0, cosine)
            reasons = [reason, *c.reasons] if cosine >= CLOSE else list(c.reasons)
            ranked.append(Suggestion(id=c.id, score=round(score, 4), reasons=reasons))
        ranked.sort(key=lambda s: (-s.score, str(s.id)))
        return ranked[:limit]

    async def projects_for_developer(
        self, session: AsyncSession, developer_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]:
        pool = await self.base.projects_for_developer(session, developer_id, max(50, limit * POOL))
        return await self._rerank(
            session, pool, ("developer", developer_id), "project", limit, "Described much like your profile"
        )

    async def developers_for_project(
        self, session: AsyncSession, project_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]:
        pool = await self.base.developers_for_project(session, project_id, max(50, limit * POOL))
        return await self._rerank(
            session,
            pool,
            ("project", project_id),
            "developer",
            limit,
            "Their profile reads like your project",
        )

    async def similar_services(
        self, session: AsyncSession, service_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]:
        pool = await self.base.similar_services(session, service_id, max(50, limit * POOL))
        return await self._rerank(
            session, pool, ("service", service_id), "service", limit, "Described much like this one"
        )


def next_recommender(site: Any, plugin: object) -> Recommender | None:
    """The recommender that answers when ``plugin`` does not (through the hook)."""
    caller = site.plugins.pm.subset_hook_caller("get_recommender", remove_plugins=[plugin])
    result: Recommender | None = caller(site=site)
    return result
