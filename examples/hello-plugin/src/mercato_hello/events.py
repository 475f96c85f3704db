"""The events this plugin emits."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mercato.core.events import EventPayload


class GreetingSent(EventPayload):
    """Someone greeted through ``POST /api/v1/hello/greetings``."""

    event_type: ClassVar[str] = "hello.greeting_sent"
    greeting_id: uuid.UUID
    name: str
