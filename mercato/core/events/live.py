"""Live fan-out on plain NATS subjects ``<prefix>.live.user.<id>``.

Not stored and not replayed: for pushing to open browser sockets. Every app instance
subscribes for the users connected to it, so something published through instance A
reaches a socket held by instance B. Durable facts go through events and the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.aio.subscription import Subscription
    from sqlalchemy.ext.asyncio import AsyncSession

LIVE_PENDING = "mercato.live_pending"
"""Session info key: live messages to publish once the session's transaction commits."""


def publish_after_commit(session: AsyncSession, user_id: uuid.UUID | str, message: Any) -> None:
    """Push ``message`` to ``user_id``'s open sockets once this transaction commits (never if it
    rolls back), so a socket never shows what the database does not hold."""
    pending = session.sync_session.info.setdefault(LIVE_PENDING, [])
    pending.append((str(user_id), msgspec.to_builtins(message)))


class LiveFanout:
    """Publish to, and subscribe to, a user's live channel."""

    def __init__(self, nc: NATS, prefix: str) -> None:
        self.nc = nc
        self.prefix = prefix

    def subject(self, user_id: uuid.UUID | str) -> str:
        return f"{self.prefix}.live.user.{user_id}"

    async def publish(self, user_id: uuid.UUID | str, message: Any) -> None:
        """Send ``message`` (a Struct or JSON-able value) to every socket of ``user_id``."""
        await self.nc.publish(self.subject(user_id), msgspec.json.encode(message))

    async def subscribe(
        self, user_id: uuid.UUID | str, callback: Callable[[bytes], Awaitable[None]]
    ) -> Subscription:
        """Call ``callback(raw_json)`` for each live message; ``unsubscribe()`` the result."""

        async def deliver(msg: Any) -> None:
            await callback(msg.data)

        return await self.nc.subscribe(self.subject(user_id), cb=deliver)
