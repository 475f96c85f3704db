"""Tables of reputation: the ratings published about a person, and the figures derived."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, SmallInteger, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, UTCDateTime, utcnow

MIN_FOR_SCORES = 3
"""Ended contracts (or clients) needed before a rate is shown: two jobs say little."""


class RatedAs(StrEnum):
    DEVELOPER = "developer"
    """Rated by a client they worked for."""
    CLIENT = "client"
    """Rated by a developer who worked for them."""


class PublishedRating(Base):
    """One published review's numbers, as the ``review.published`` event told them.

    The reviews plugin owns the reviews; reputation keeps only what it averages, keyed by
    the review, so a redelivered event writes nothing new.
    """

    __tablename__ = "reputation_ratings"

    review_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    contract_id: Mapped[uuid.UUID]
    rating: Mapped[int] = mapped_column(SmallInteger)
    ratings: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    """Sub-ratings by name (``quality``, ``communication``, …)."""
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    """Hidden by a moderator: not counted."""


class Reputation(Base):
    """A person's figures in one role. Rates are whole percents, None until there is enough
    to say (:data:`MIN_FOR_SCORES`)."""

    __tablename__ = "reputations"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(10), primary_key=True)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    rating_avg: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    """1 to 5, two decimals; None without ratings."""
    sub_ratings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    contracts_ended: Mapped[int] = mapped_column(Integer, default=0)
    """Completed or cancelled contracts in this role."""
    contracts_successful: Mapped[int] = mapped_column(Integer, default=0)
    """Completed without a dispute decided against this person."""
    job_success: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    milestones_due: Mapped[int] = mapped_column(Integer, default=0)
    """Approved milestones that had a due date."""
    milestones_on_time: Mapped[int] = mapped_column(Integer, default=0)
    on_time_rate: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    counterparts: Mapped[int] = mapped_column(Integer, default=0)
    """Distinct people on the other side of this person's contracts."""
    repeat_counterparts: Mapped[int] = mapped_column(Integer, default=0)
    """Of them, those with two contracts or more."""
    repeat_rate: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


REPUTATION_MODELS: list[type[Base]] = [PublishedRating, Reputation]


async def reputation_of(
    session: AsyncSession, user_ids: Iterable[uuid.UUID], role: RatedAs | str = RatedAs.DEVELOPER
) -> dict[uuid.UUID, Reputation]:
    """The rows of those of ``user_ids`` who have one in ``role``, in one query."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    rows = await session.scalars(
        select(Reputation).where(Reputation.user_id.in_(ids), Reputation.role == str(role)))
    return {row.user_id: row for row in rows}
