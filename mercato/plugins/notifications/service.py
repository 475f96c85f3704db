"""Notifications: made from domain events, stored per person, pushed to their open sockets,
and carried by channels (e-mail, webhook) per each person's preferences.

**Exactly once.** The event handler writes notifications in the transaction that records the
event as handled, and a notification is unique per (person, event): a redelivered event makes
nothing new. Channels run from timers scheduled in that same transaction, outside it; each
channel that delivered is recorded on the notification, so a retry sends only what is left.

**Digests.** A person who chose a daily digest for a category on a channel gets one delivery a
day (at ``digest_hour`` UTC) with everything not yet delivered on that channel.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import msgspec
import structlog
from sqlalchemy import func, select, update

from mercato.core.accounts.models import User
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import EventHandler
from mercato.core.events.live import publish_after_commit
from mercato.core.notify import NotificationChannel, NotificationItem, Recipient
from mercato.core.pagination import newest_first
from mercato.core.timers import TimerHandler, schedule

from .models import Notification, NotificationPreference
from .rules import CATEGORIES, RULES, Draft

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.events import Event
    from mercato.core.site import Site
    from mercato.core.timers.models import Timer

log = structlog.get_logger("mercato.notifications")

PLUGIN_ID = "notifications"
IN_APP = "in_app"
DELIVER = "notifications.deliver"
DIGEST = "notifications.digest"
HANDLER_ID = "notifications"


class NotificationSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.notifications]``."""

    digest_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 8
    """The hour (UTC) daily digests go out."""
    webhook_url: str = ""
    """Where the ``webhook`` channel posts (e.g. a Slack or Discord incoming webhook); empty: off."""
    webhook_secret: str = ""
    """Signs each webhook (``Mercato-Signature: t=<unix time>,v1=<HMAC-SHA256 hex>``)."""


class NotificationOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    category: str
    title: str
    body: str
    url: str
    read: bool
    created_at: datetime


class NotificationPage(msgspec.Struct, kw_only=True):
    items: list[NotificationOut]
    next_cursor: str | None
    unread: int
    """How many of yours are unread (all of them, not only this page's)."""


class ChannelChoice(msgspec.Struct, kw_only=True):
    channel: str
    enabled: bool
    digest: bool = False
    """Only for channels that offer a daily digest (e-mail)."""


class CategoryPreferences(msgspec.Struct, kw_only=True):
    category: str
    label: str
    channels: list[ChannelChoice]


class Preferences(msgspec.Struct, kw_only=True):
    categories: list[CategoryPreferences]
    channels: dict[str, str]
    """Channel id → label."""


class PreferenceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    category: str
    channel: str
    enabled: bool
    digest: bool = False


class PreferencesIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    choices: Annotated[list[PreferenceIn], msgspec.Meta(max_length=100)]


def notification_out(row: Notification) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        kind=row.kind,
        category=row.category,
        title=row.title,
        body=row.body,
        url=row.url,
        read=row.read_at is not None,
        created_at=row.created_at,
    )


class Notifications:
    def __init__(self, site: Site) -> None:
        self.site = site

    @property
    def settings(self) -> NotificationSettings:
        found = self.site.plugin_settings(PLUGIN_ID)
        return found if isinstance(found, NotificationSettings) else NotificationSettings()

    def channels(self) -> dict[str, NotificationChannel]:
        return {channel.id: channel for channel in self.site.plugins.notification_channels(self.site)}

    # -- making them -----------------------------------------------------------------------
    async def handle(self, event: Event, session: AsyncSession) -> None:
        rule = RULES.get(event.type)
        if rule is None:
            return
        drafts = [d for d in await rule(event, session) if d.user_id != event.actor_id]
        for draft in drafts:
            await self._make(session, event, draft)

    async def _make(self, session: AsyncSession, event: Event, draft: Draft) -> None:
        exists = await session.scalar(
            select(Notification.id).where(
                Notification.user_id == draft.user_id, Notification.event_id == event.id
            )
        )
        if exists is not None:
            return
        if await session.get(User, draft.user_id) is None:
            return
        choices = await self._choices(session, draft.user_id)
        if not choices.get((draft.category, IN_APP), (True, False))[0]:
            return
        row = Notification(
            id=uuid.uuid4(),
            user_id=draft.user_id,
            event_id=event.id,
            kind=event.type,
            category=draft.category,
            title=draft.title[:300],
            body=draft.body[:2000],
            url=draft.url[:300],
            delivered=[],
            created_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        publish_after_commit(
            session,
            draft.user_id,
            {
                "type": "notification",
                "notification": notification_out(row),
                "unread": await self.unread(session, draft.user_id),
            },
        )
        for channel in self.channels().values():
            enabled, digest = choices.get((draft.category, channel.id), (channel.default_enabled, False))
            if not enabled:
                continue
            if digest and channel.digest:
                await schedule(session, DIGEST, f"{draft.user_id}:{channel.id}", self.next_digest())
            else:
                await schedule(session, DELIVER, f"{row.id}:{channel.id}", utcnow())

    def next_digest(self, now: datetime | None = None) -> datetime:
        now = now or utcnow()
        moment = now.replace(hour=self.settings.digest_hour, minute=0, second=0, microsecond=0)
        return moment if moment > now else moment + timedelta(days=1)

    # -- reading and marking ---------------------------------------------------------------
    async def unread(self, session: AsyncSession, user_id: uuid.UUID) -> int:
        return int(
            await session.scalar(
                select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
            )
            or 0
        )

    async def page(
        self, session: AsyncSession, user_id: uuid.UUID, *, unread_only: bool, limit: int, cursor: str | None
    ) -> NotificationPage:
        query = select(Notification).where(Notification.user_id == user_id)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        rows, next_cursor = await newest_first(
            session, query, moment=Notification.created_at, row_id=Notification.id, cursor=cursor, limit=limit
        )
        return NotificationPage(
            items=[notification_out(r) for r in rows],
            next_cursor=next_cursor,
            unread=await self.unread(session, user_id),
        )

    async def mark_read(
        self, session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID | None
    ) -> int:
        """Mark one (or, with None, every) notification of ``user_id`` read; how many changed.
        Someone else's notification changes nothing (the caller answers 404)."""
        query = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        if notification_id is not None:
            query = query.where(Notification.id == notification_id)
        result = await session.execute(query.values(read_at=utcnow()))
        changed = int(getattr(result, "rowcount", 0) or 0)
        if changed:
            publish_after_commit(
                session,
                user_id,
                {"type": "notifications_read", "unread": await self.unread(session, user_id)},
            )
        return changed

    # -- preferences -------------------------------------------------------------------------
    async def _choices(
        self, session: AsyncSession, user_id: uuid.UUID
    ) -> dict[tuple[str, str], tuple[bool, bool]]:
        rows = await session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        )
        return {(r.category, r.channel): (r.enabled, r.digest) for r in rows}

    def channel_labels(self) -> dict[str, str]:
        return {IN_APP: "On the site", **{c.id: c.label for c in self.channels().values()}}

    async def preferences(self, session: AsyncSession, user_id: uuid.UUID) -> Preferences:
        choices = await self._choices(session, user_id)
        channels = self.channels()
        out = []
        for category, label in CATEGORIES.items():
            row = [ChannelChoice(channel=IN_APP, enabled=choices.get((category, IN_APP), (True, False))[0])]
            for channel in channels.values():
                enabled, digest = choices.get((category, channel.id), (channel.default_enabled, False))
                row.append(
                    ChannelChoice(channel=channel.id, enabled=enabled, digest=digest and channel.digest)
                )
            out.append(CategoryPreferences(category=category, label=label, channels=row))
        return Preferences(categories=out, channels=self.channel_labels())

    async def choose(self, session: AsyncSession, user_id: uuid.UUID, choices: list[PreferenceIn]) -> None:
        """Save choices (400 naming the entry for an unknown category or channel)."""
        channels = self.channels()
        for index, choice in enumerate(choices):
            if choice.category not in CATEGORIES:
                raise field_error(
                    f"choices[{index}].category", f"Unknown category; use one of {', '.join(CATEGORIES)}."
                )
            if choice.channel != IN_APP and choice.channel not in channels:
                raise field_error(
                    f"choices[{index}].channel",
                    f"Unknown channel; use one of {', '.join([IN_APP, *channels])}.",
                )
        for choice in choices:
            digest = choice.digest and choice.channel in channels and channels[choice.channel].digest
            row = await session.scalar(
                select(NotificationPreference).where(
                    NotificationPreference.user_id == user_id,
                    NotificationPreference.category == choice.category,
                    NotificationPreference.channel == choice.channel,
                )
            )
            if row is None:
                session.add(
                    NotificationPreference(
                        id=uuid.uuid4(),
                        user_id=user_id,
                        category=choice.category,
                        channel=choice.channel,
                        enabled=choice.enabled,
                        digest=digest,
                    )
                )
            else:
                row.enabled, row.digest = choice.enabled, digest

    # -- unsubscribe links -----------------------------------------------------------------------
    def unsubscribe_token(self, user_id: uuid.UUID, channel: str, category: str) -> str:
        """A token for one click that turns ``channel`` off for ``category`` (``*``: every one)."""
        body = f"{user_id}.{channel}.{category}"
        mac = hmac.new(self._key(), body.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{body}.{mac}"

    def read_unsubscribe_token(self, token: str) -> tuple[uuid.UUID, str, str] | None:
        parts = token.split(".")
        if len(parts) != 4:
            return None
        user, channel, category, mac = parts
        expected = hmac.new(self._key(), f"{user}.{channel}.{category}".encode(), hashlib.sha256).hexdigest()[
            :32
        ]
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            return uuid.UUID(user), channel, category
        except ValueError:
            return None

    def _key(self) -> bytes:
        return hashlib.sha256(
            b"notifications-unsubscribe:" + self.site.settings.secret_key().encode()
        ).digest()

    def unsubscribe_url(self, user_id: uuid.UUID, channel: str, category: str) -> str:
        base = self.site.settings.site.base_url.rstrip("/")
        return f"{base}/notifications/unsubscribe?token={self.unsubscribe_token(user_id, channel, category)}"

    def one_click_url(self, user_id: uuid.UUID, channel: str, category: str) -> str:
        """The ``List-Unsubscribe`` address mail clients POST to (no log-in, no form)."""
        base = self.site.settings.site.base_url.rstrip("/")
        token = self.unsubscribe_token(user_id, channel, category)
        return f"{base}/api/v1/notifications/unsubscribe?token={token}"

    async def unsubscribe(
        self, session: AsyncSession, user_id: uuid.UUID, channel: str, category: str
    ) -> None:
        categories = list(CATEGORIES) if category == "*" else [category]
        await self.choose(
            session, user_id, [PreferenceIn(category=c, channel=channel, enabled=False) for c in categories]
        )

    # -- delivery by channels (timers) --------------------------------------------------------
    async def _deliver(self, _session: None, timer: Timer) -> None:
        notification_id, _, channel_id = timer.ref.partition(":")
        channel = self.channels().get(channel_id)
        if channel is None:
            return
        async with self.site.db.reading() as session:
            row = await session.get(Notification, uuid.UUID(notification_id))
            if row is None or channel_id in row.delivered:
                return
            user = await session.get(User, row.user_id)
            if user is None:
                return
            recipient = self._recipient(user, channel_id, row.category)
            items = [self._item(row)]
        await channel.deliver(self.site, recipient, items)
        await self._delivered([item.id for item in items], channel_id)

    async def _digest(self, _session: None, timer: Timer) -> None:
        user_id, _, channel_id = timer.ref.partition(":")
        channel = self.channels().get(channel_id)
        if channel is None:
            return
        async with self.site.db.reading() as session:
            user = await session.get(User, uuid.UUID(user_id))
            if user is None:
                return
            choices = await self._choices(session, user.id)
            digest_categories = [
                c for c in CATEGORIES if choices.get((c, channel_id), (False, False)) == (True, True)
            ]
            rows = [
                r
                for r in await session.scalars(
                    select(Notification)
                    .where(Notification.user_id == user.id, Notification.category.in_(digest_categories))
                    .order_by(Notification.created_at)
                    .limit(200)
                )
                if channel_id not in r.delivered
            ]
            if not rows:
                return
            recipient = self._recipient(user, channel_id, "*")
            items = [self._item(r) for r in rows]
        await channel.deliver(self.site, recipient, items, digest=True)
        await self._delivered([item.id for item in items], channel_id)

    async def _delivered(self, ids: list[uuid.UUID], channel_id: str) -> None:
        async with self.site.db.transaction() as session:
            rows = await session.scalars(
                select(Notification).where(Notification.id.in_(ids)).with_for_update()
            )
            for row in rows:
                if channel_id not in row.delivered:
                    row.delivered = [*row.delivered, channel_id]

    def _recipient(self, user: User, channel_id: str, category: str) -> Recipient:
        return Recipient(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            unsubscribe_url=self.unsubscribe_url(user.id, channel_id, category),
            one_click_url=self.one_click_url(user.id, channel_id, category),
        )

    def _item(self, row: Notification) -> NotificationItem:
        base = self.site.settings.site.base_url.rstrip("/")
        return NotificationItem(
            id=row.id,
            kind=row.kind,
            category=row.category,
            title=row.title,
            body=row.body,
            url=f"{base}{row.url}" if row.url.startswith("/") else row.url,
            created_at=row.created_at,
        )

    def event_handlers(self) -> list[EventHandler]:
        return [EventHandler(id=HANDLER_ID, events=tuple(RULES), handle=self.handle)]

    def timer_handlers(self) -> list[TimerHandler]:
        return [
            TimerHandler(DELIVER, self._deliver, transactional=False),
            TimerHandler(DIGEST, self._digest, transactional=False),
        ]
