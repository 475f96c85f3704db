"""API shapes of reports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Reason = Literal["spam", "scam", "abusive", "inappropriate", "other"]


class ReportIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A report of content: ``subject_type`` is ``listing``, ``project``, ``profile``,
    ``message``, ``review`` or a plugin's own kind."""

    subject_type: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    subject_id: uuid.UUID
    reason: Reason
    details: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class ReportOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    subject_type: str
    subject_id: uuid.UUID
    reason: str
    details: str
    status: str
    """open, hidden, dismissed or suspended (the admin's decision)."""
    created_at: datetime
    decided_at: datetime | None
