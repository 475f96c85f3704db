"""Events of service listings and orders."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mercato.core.events import EventPayload


class ServicePublished(EventPayload, frozen=True):
    """A draft went live, or a paused listing was resumed."""

    event_type: ClassVar[str] = "service.published"
    listing_id: uuid.UUID
    developer_id: uuid.UUID
    resumed: bool = False


class ServiceUpdated(EventPayload, frozen=True):
    event_type: ClassVar[str] = "service.updated"
    listing_id: uuid.UUID
    developer_id: uuid.UUID


class ServicePaused(EventPayload, frozen=True):
    event_type: ClassVar[str] = "service.paused"
    listing_id: uuid.UUID
    developer_id: uuid.UUID


class ServiceArchived(EventPayload, frozen=True):
    event_type: ClassVar[str] = "service.archived"
    listing_id: uuid.UUID
    developer_id: uuid.UUID


class ServiceOrdered(EventPayload, frozen=True):
    event_type: ClassVar[str] = "service.ordered"
    order_id: uuid.UUID
    listing_id: uuid.UUID
    contract_id: uuid.UUID
    client_id: uuid.UUID
    developer_id: uuid.UUID
    total: int
    currency: str
