"""Notifications and each person's choices about them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


class Notification(UUIDPrimaryKey, Base):
    """Something a person should know about, made from a domain event. One per person and
    event: a redelivered event finds its notification already there."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "event_id"),
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
        Index("ix_notifications_user_id_unread", "user_id", "read_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(60))
    """The event type (``milestone.submitted``, …)."""
    category: Mapped[str] = mapped_column(String(20))
    """What preferences are chosen by: projects, contracts, payments, disputes, messages, reviews."""
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(String(300), default="")
    """A path on the site where the person acts on it."""
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    delivered: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Channels (besides the site itself) that have delivered it."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NotificationPreference(UUIDPrimaryKey, Base):
    """A person's choice for one category on one channel; no row means the channel's default."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "category", "channel"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    """E-mail only: gather them into one message a day instead of one each."""
