"""Recommendations: projects for a developer, developers for a project, services like a
service. A plugin provides the :class:`Recommender` through ``get_recommender``."""

from __future__ import annotations

import uuid
from typing import Protocol, runtime_checkable

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession


class Suggestion(msgspec.Struct, frozen=True):
    """One recommended item, best first in a list."""

    id: uuid.UUID
    """A project's, a developer's (user id) or a service's id."""
    score: float
    """Higher is better; comparable only within one list."""
    reasons: list[str]
    """Why, in words a person reads: ``Matches 4 of your 5 skills``."""


@runtime_checkable
class Recommender(Protocol):
    """Ranks what fits. Every method returns at most ``limit`` suggestions, best first, and
    never items the viewer may not see (drafts, private projects, their own things)."""

    id: str
    """Names the recommender in ``mercato plugins`` and in the evaluation."""

    async def projects_for_developer(
        self, session: AsyncSession, developer_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]: ...

    async def developers_for_project(
        self, session: AsyncSession, project_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]: ...

    async def similar_services(
        self, session: AsyncSession, service_id: uuid.UUID, limit: int = 10
    ) -> list[Suggestion]: ...
