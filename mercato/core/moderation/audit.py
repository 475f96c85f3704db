"""The audit log: every admin action, written in the action's own transaction so that an
action and its record commit (or roll back) together."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mercato.core.moderation.models import AuditEntry
from mercato.core.pagination import newest_first

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def record(
    session: AsyncSession,
    actor_id: uuid.UUID | None,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID | str | None = None,
    *,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit row for ``action`` (e.g. ``user.suspend``) by ``actor_id`` on
    ``subject_type``/``subject_id``, in ``session``'s transaction."""
    entry = AuditEntry(
        actor_id=actor_id,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id is not None else None,
        reason=reason,
        data=data or {},
    )
    session.add(entry)
    return entry


async def audit_page(
    session: AsyncSession,
    *,
    action: str | None = None,
    actor_id: uuid.UUID | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEntry], str | None]:
    """Audit entries, newest first, filtered by action (``user.suspend``, or a prefix such as
    ``user.``), actor or subject."""
    query = select(AuditEntry)
    if action:
        query = query.where(
            AuditEntry.action.startswith(action) if action.endswith(".") else AuditEntry.action == action
        )
    if actor_id is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    if subject_type:
        query = query.where(AuditEntry.subject_type == subject_type)
    if subject_id:
        query = query.where(AuditEntry.subject_id == subject_id)
    return await newest_first(
        session, query, moment=AuditEntry.at, row_id=AuditEntry.id, cursor=cursor, limit=limit
    )
