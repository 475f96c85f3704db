"""Recomputing reputation from the facts, and reading it back.

Every figure is derived afresh from the rows that hold the facts: published ratings
(:class:`~.models.PublishedRating`), contracts, their milestones and the dispute settlements
on their timelines. Recomputing twice gives the same row, which is what makes the event
handlers safe to run again on a redelivered event.

- **Job success**: contracts completed without a dispute decided against the person, over
  contracts ended (completed or cancelled). A settlement is against the developer when more
  of the escrow went back to the client than to them, and against the client the other way.
- **On time** (developers): approved milestones with a due date whose accepted submission
  came within ``due_days`` of the contract's start, over approved milestones with a due date.
- **Repeat rate**: people on the other side with two contracts or more, over all of them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mercato.core.contracts.models import (
    Contract,
    ContractActivity,
    ContractStatus,
    Milestone,
    MilestoneStatus,
)
from mercato.core.db import utcnow
from mercato.core.reputation.models import MIN_FOR_SCORES, PublishedRating, RatedAs, Reputation

ENDED = (ContractStatus.COMPLETED, ContractStatus.CANCELLED)


def _percent(part: int, whole: int, minimum: int = MIN_FOR_SCORES) -> int | None:
    return round(100 * part / whole) if whole >= minimum else None


async def _figures(session: AsyncSession, user_id: uuid.UUID, role: RatedAs) -> dict[str, Any] | None:
    """The row's values for ``user_id`` in ``role``, or None when there is nothing to say."""
    developer = role is RatedAs.DEVELOPER
    side = Contract.developer_id if developer else Contract.client_id
    other = Contract.client_id if developer else Contract.developer_id
    contracts = (await session.execute(
        select(Contract.id, Contract.status, other.label("other"), Contract.created_at).where(side == user_id)
    )).all()
    ratings = list(await session.scalars(
        select(PublishedRating).where(PublishedRating.subject_id == user_id, PublishedRating.role == role,
                                      PublishedRating.hidden.is_(False))
    ))
    if not contracts and not ratings:
        return None
    ended = {c.id for c in contracts if c.status in ENDED}
    lost: set[uuid.UUID] = set()
    if ended:
        for contract_id, data in await session.execute(
            select(ContractActivity.contract_id, ContractActivity.data).where(
                ContractActivity.contract_id.in_(ended), ContractActivity.kind == "milestone.settled")
        ):
            to_developer, to_client = int(data.get("released", 0)), int(data.get("refunded", 0))
            if (to_client > to_developer) if developer else (to_developer > to_client):
                lost.add(contract_id)
    successful = sum(1 for c in contracts if c.status == ContractStatus.COMPLETED and c.id not in lost)
    due = on_time = 0
    if developer and contracts:
        started = {c.id: c.created_at for c in contracts}
        for contract_id, due_days, submitted_at in await session.execute(
            select(Milestone.contract_id, Milestone.due_days, Milestone.submitted_at).where(
                Milestone.contract_id.in_(list(started)), Milestone.status == MilestoneStatus.APPROVED,
                Milestone.due_days.is_not(None))
        ):
            due += 1
            deadline = started[contract_id] + timedelta(days=due_days or 0)
            if submitted_at is not None and submitted_at <= deadline:
                on_time += 1
    per_counterpart = Counter(c.other for c in contracts)
    repeat = sum(1 for n in per_counterpart.values() if n >= 2)
    subs: dict[str, list[int]] = {}
    for rating in ratings:
        for name, value in (rating.ratings or {}).items():
            subs.setdefault(name, []).append(int(value))
    return {
        "rating_count": len(ratings),
        "rating_avg": round(sum(r.rating for r in ratings) / len(ratings), 2) if ratings else None,
        "sub_ratings": {name: round(sum(v) / len(v), 2) for name, v in sorted(subs.items())},
        "contracts_ended": len(ended),
        "contracts_successful": successful,
        "job_success": _percent(successful, len(ended)),
        "milestones_due": due,
        "milestones_on_time": on_time,
        "on_time_rate": _percent(on_time, due),
        "counterparts": len(per_counterpart),
        "repeat_counterparts": repeat,
        "repeat_rate": _percent(repeat, len(per_counterpart)),
    }


async def recompute(session: AsyncSession, user_id: uuid.UUID) -> dict[RatedAs, dict[str, Any]]:
    """Bring ``user_id``'s rows up to date (an upsert per role, safe beside a concurrent
    recomputation); returns the roles whose figures changed, with their new values."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    changed: dict[RatedAs, dict[str, Any]] = {}
    for role in RatedAs:
        values = await _figures(session, user_id, role)
        if values is None:
            continue
        before = await session.get(Reputation, (user_id, role.value), populate_existing=True)
        if before is not None and all(getattr(before, name) == value for name, value in values.items()):
            continue
        statement = insert(Reputation).values(user_id=user_id, role=role.value, updated_at=utcnow(), **values)
        await session.execute(statement.on_conflict_do_update(
            index_elements=[Reputation.user_id, Reputation.role],
            set_={**values, "updated_at": statement.excluded.updated_at},
        ))
        changed[role] = values
    return changed

