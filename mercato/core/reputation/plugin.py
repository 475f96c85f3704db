"""Reputation as a built-in plugin: its tables, and the handler that keeps them current."""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from mercato import hookimpl
from mercato.core.events import Event, EventHandler, emit
from mercato.core.reputation.events import ReputationChanged
from mercato.core.reputation.models import REPUTATION_MODELS, PublishedRating
from mercato.core.reputation.service import recompute

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

REVIEW_EVENTS = ("review.published", "review.hidden", "review.restored")
"""What the reviews plugin tells: the numbers of a published review, or a moderator's decision."""
CONTRACT_EVENTS = ("contract.created", "contract.completed", "contract.cancelled", "milestone.approved",
                   "milestone.settled")
"""Steps after which a party's job success, on-time or repeat rate may differ."""


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def _one_at_a_time(session: AsyncSession, people: list[uuid.UUID]) -> None:
    """Recompute each person in one transaction at a time (PostgreSQL advisory locks held until
    commit, taken in one order): two events handled at once would otherwise each miss the
    other's uncommitted fact and the later commit would keep a stale count. SQLite write
    transactions are serial already (``BEGIN IMMEDIATE``)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for user_id in sorted(set(people)):
        digest = hashlib.blake2b(f"reputation:{user_id}".encode(), digest_size=8).digest()
        await session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True))))


async def _review(event: Event, session: AsyncSession) -> None:
    payload = event.payload
    review_id = _uuid(payload["review_id"])
    if event.type == "review.published":
        if await session.get(PublishedRating, review_id) is None:
            session.add(PublishedRating(
                review_id=review_id, subject_id=_uuid(payload["subject_id"]),
                role=str(payload["subject_role"]),
                contract_id=_uuid(payload["contract_id"]), rating=int(payload["rating"]),
                ratings={str(k): int(v) for k, v in dict(payload.get("ratings") or {}).items()},
            ))
            await session.flush()
    else:
        await session.execute(update(PublishedRating).where(PublishedRating.review_id == review_id)
                              .values(hidden=event.type == "review.hidden"))


async def handle(event: Event, session: AsyncSession) -> None:
    """Record what the event tells, then recompute the people it concerns."""
    if event.type in REVIEW_EVENTS:
        people = [_uuid(event.payload["subject_id"])]
    else:
        people = [_uuid(event.payload["client_id"]), _uuid(event.payload["developer_id"])]
    await _one_at_a_time(session, people)
    if event.type in REVIEW_EVENTS:
        await _review(event, session)
    for user_id in people:
        for role, values in (await recompute(session, user_id)).items():
            emit(session, Event.of(ReputationChanged(
                user_id=user_id, role=role.value, rating_avg=values["rating_avg"],
                rating_count=values["rating_count"], job_success=values["job_success"])))


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(REPUTATION_MODELS)


@hookimpl
def register_event_handlers(site: Site) -> list[EventHandler]:
    return [EventHandler(id="reputation", events=(*REVIEW_EVENTS, *CONTRACT_EVENTS), handle=handle)]

