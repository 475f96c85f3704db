"""Moderation tables: the audit log of admin actions, reports, and site settings overrides."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, utcnow


class ReportReason(StrEnum):
    SPAM = "spam"
    SCAM = "scam"
    """A scam, or asking to pay off the platform."""
    ABUSIVE = "abusive"
    INAPPROPRIATE = "inappropriate"
    OTHER = "other"


class ReportStatus(StrEnum):
    OPEN = "open"
    HIDDEN = "hidden"
    """An admin hid the content."""
    DISMISSED = "dismissed"
    """An admin found nothing wrong."""
    SUSPENDED = "suspended"
    """An admin hid the content and suspended its owner."""


class AuditEntry(UUIDPrimaryKey, Base):
    """One admin action, written in the action's own transaction."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject_type_subject_id", "subject_type", "subject_id"),)

    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(60), index=True)
    """Dotted, e.g. ``user.suspend``, ``report.hide``, ``settings.update``."""
    subject_type: Mapped[str] = mapped_column(String(40))
    """``user``, ``listing``, ``report``, ``dispute``, ``setting``…"""
    subject_id: Mapped[str | None] = mapped_column(String(100))
    """An id, or a setting's key."""
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Report(UUIDPrimaryKey, Timestamps, Base):
    """Someone's report of content, and the admin's decision on it."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_subject_type_subject_id", "subject_type", "subject_id"),
        Index("ix_reports_status_created_at", "status", "created_at"),
        Index(
            "uq_reports_open_per_reporter",
            "reporter_id",
            "subject_type",
            "subject_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    reporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID] = mapped_column()
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    """Who owned the content when it was reported."""
    reason: Mapped[str] = mapped_column(String(20))
    details: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=ReportStatus.OPEN)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class SiteSetting(Base):
    """An admin's override of one setting (``payments.developer_fee_percent``…)."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


MODERATION_MODELS: list[type[Base]] = [AuditEntry, Report, SiteSetting]
