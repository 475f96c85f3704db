"""Notification channels: how a notification reaches a person outside the site itself.

The ``notifications`` plugin stores every notification and shows it on the site; channels from
``register_notification_channels`` carry it further (e-mail, an organisation's webhook, …).
A channel is called by a timer outside any database transaction, once per notification (or
once per digest), and must be safe to call again for the same items: a retry after a crash
repeats it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

if TYPE_CHECKING:
    from mercato.core.site import Site


class NotificationItem(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: str
    """The event type that caused it."""
    category: str
    title: str
    body: str
    url: str
    """An absolute URL on the site."""
    created_at: datetime


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    email: str
    display_name: str
    unsubscribe_url: str
    """A page that turns this channel off for the items' category (a digest: for all of them)."""
    one_click_url: str
    """The same, for mail clients' one-click ``List-Unsubscribe-Post`` (RFC 8058)."""


@runtime_checkable
class NotificationChannel(Protocol):
    id: str
    """Stable, e.g. ``email``; the preference key."""
    label: str
    """What people see in their settings."""
    default_enabled: bool
    """Whether it is on for someone who never chose."""
    digest: bool
    """Whether people may have it gather a day's notifications into one delivery."""

    async def deliver(self, site: Site, recipient: Recipient, items: list[NotificationItem], *,
                      digest: bool = False) -> None:
        """Send ``items`` (one, or a ``digest``'s) to ``recipient``; raise to be retried later."""
        ...
