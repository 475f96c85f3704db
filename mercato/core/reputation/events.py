"""Events of reputation."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mercato.core.events import EventPayload


class ReputationChanged(EventPayload, frozen=True):
    """Someone's figures in ``role`` changed (search re-ranks them, caches drop them)."""

    event_type: ClassVar[str] = "reputation.changed"
    user_id: uuid.UUID
    role: str
    rating_avg: float | None
    rating_count: int
    job_success: int | None
