"""Tables of the event backbone: the transactional outbox and the processed-event markers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, utcnow


class OutboxEvent(Base):
    """An event written in the same transaction as the change it describes.

    The relay publishes rows to JetStream and deletes them; JetStream keeps the history.
    """

    __tablename__ = "outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """The event id; also the JetStream ``Nats-Msg-Id`` used for de-duplication."""
    type: Mapped[str] = mapped_column(String(120))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    """The msgspec-JSON encoded :class:`~mercato.core.events.Event`."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ProcessedEvent(Base):
    """Marks that ``consumer`` has applied ``event_id``; committed with the handler's effects."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
