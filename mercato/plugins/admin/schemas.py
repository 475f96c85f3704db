"""API shapes of the admin plugin."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec


class AdminUser(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    display_name: str
    roles: list[str]
    status: str
    email_verified: bool
    suspended_reason: str | None
    created_at: datetime
    last_login_at: datetime | None


class AdminUserPage(msgspec.Struct, kw_only=True):
    items: list[AdminUser]
    next_cursor: str | None


class RolesIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    roles: list[Literal["client", "developer", "admin"]]


class AuditOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    actor_id: uuid.UUID | None
    action: str
    subject_type: str
    subject_id: str | None
    reason: str
    data: dict[str, Any]
    at: datetime


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditOut]
    next_cursor: str | None


class AdminReport(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    reporter_id: uuid.UUID
    subject_type: str
    subject_id: uuid.UUID
    owner_id: uuid.UUID | None
    reason: str
    details: str
    status: str
    note: str
    created_at: datetime
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    title: str | None
    """The reported item as it is now (None once it is gone)."""
    excerpt: str | None
    url: str | None
    hidden: bool


class AdminReportPage(msgspec.Struct, kw_only=True):
    items: list[AdminReport]
    next_cursor: str | None


class DecideIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: Literal["hide", "dismiss", "suspend", "restore"]
    """``restore`` shows content hidden on this report again (its reports become dismissed)."""
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class RejectIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class PendingListing(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    developer_id: uuid.UUID
    title: str
    status: str
    updated_at: datetime


class PendingListingPage(msgspec.Struct, kw_only=True):
    items: list[PendingListing]
    next_cursor: str | None


class SettingOut(msgspec.Struct, kw_only=True):
    key: str
    label: str
    hint: str
    value: Any
    default: Any
    overridden: bool


class SettingsOut(msgspec.Struct, kw_only=True):
    items: list[SettingOut]
