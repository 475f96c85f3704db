"""Event envelopes, typed payloads and handler declarations."""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import msgspec

from mercato.core.db import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
HANDLER_ID = re.compile(r"^[A-Za-z0-9_-]{1,120}$")
RESERVED_DOMAINS = frozenset({"live"})

P = TypeVar("P", bound="EventPayload")


class EventPayload(msgspec.Struct, frozen=True, kw_only=True):
    """Base of typed event payloads. Subclasses set ``event_type``::

        class ProposalAccepted(EventPayload):
            event_type: ClassVar[str] = "proposal.accepted"
            proposal_id: UUID
    """

    event_type: ClassVar[str] = ""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A fact that happened, as stored in the outbox and carried by JetStream."""

    type: str
    """``<domain>.<event>``, e.g. ``proposal.accepted``; the subject is ``<prefix>.<type>``."""
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    actor_id: uuid.UUID | None = None
    """Who caused it (``None`` for the system: timers, webhooks)."""
    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    occurred_at: datetime = msgspec.field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if not EVENT_TYPE.match(self.type) or self.type.split(".")[0] in RESERVED_DOMAINS:
            raise ValueError(
                f"event type {self.type!r} must look like `domain.event` (lower case, "
                f"letters, digits and _; the domain may not be `live`)"
            )

    @classmethod
    def of(cls, payload: EventPayload, *, actor_id: uuid.UUID | None = None) -> Event:
        """An event carrying a typed payload."""
        if not payload.event_type:
            raise ValueError(f"{type(payload).__name__} sets no event_type")
        return cls(type=payload.event_type, payload=msgspec.to_builtins(payload), actor_id=actor_id)

    def payload_as(self, payload_type: builtins.type[P]) -> P:
        """Decode the payload into its typed Struct."""
        return msgspec.convert(self.payload, payload_type, strict=False)


HandlerFunc = Callable[[Event, "AsyncSession"], Awaitable[None]]


class EventHandler(msgspec.Struct, frozen=True, kw_only=True):
    """A reaction to events, returned from ``register_event_handlers``.

    ``handle(event, session)`` runs inside a database transaction; whatever it writes
    commits together with the marker that the event was handled, so its database effects
    happen exactly once even when JetStream delivers the event again. Effects outside the
    database (e-mail, HTTP calls) are at-least-once: make them idempotent.
    """

    id: str
    """Unique and stable: names the durable consumer, e.g. ``"notifications-proposals"``."""
    events: tuple[str, ...]
    """Event types to receive; ``*`` matches one token (``"milestone.*"``)."""
    handle: HandlerFunc
    replay: bool = False
    """On first start, also handle events already in the stream (default: only new ones)."""

    def __post_init__(self) -> None:
        if not HANDLER_ID.match(self.id):
            raise ValueError(f"event handler id {self.id!r} may use only letters, digits, _ and -")
        if not self.events:
            raise ValueError(f"event handler {self.id!r} subscribes to no events")
