"""Events of the contracts domain."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mercato.core.events import EventPayload


class ContractCreated(EventPayload, frozen=True):
    event_type: ClassVar[str] = "contract.created"
    contract_id: uuid.UUID
    client_id: uuid.UUID
    developer_id: uuid.UUID
    origin_type: str
    origin_id: uuid.UUID
    currency: str
    total: int
