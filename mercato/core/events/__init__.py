"""The event backbone: typed events, the transactional outbox, JetStream, live fan-out.

A service records what happened with :func:`emit` inside its own transaction; the relay
publishes committed events to the JetStream stream; durable consumers hand them to the
handlers plugins register. See ``docs/events.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from mercato.core.events.models import OutboxEvent, ProcessedEvent
from mercato.core.events.types import Event, EventHandler, EventPayload

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

OUTBOX_DIRTY = "mercato.outbox_dirty"
"""``session.info`` flag: this transaction wrote events; wake the relay after commit."""

__all__ = [
    "Event",
    "EventHandler",
    "EventPayload",
    "OutboxEvent",
    "ProcessedEvent",
    "emit",
]


def emit(session: AsyncSession, event: Event) -> Event:
    """Record ``event`` in the outbox as part of ``session``'s transaction.

    Nothing is published unless that transaction commits; after the commit the relay
    publishes at once.
    """
    session.add(
        OutboxEvent(
            id=event.id, type=event.type, data=msgspec.json.encode(event),
            created_at=event.occurred_at,
        )
    )
    session.info[OUTBOX_DIRTY] = True
    return event
