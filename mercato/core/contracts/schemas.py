"""The contracts API's bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class MilestoneOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    position: int
    title: str
    description: str
    amount: int
    """Minor units."""
    due_days: int | None
    status: str


class ContractOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    client_id: uuid.UUID
    developer_id: uuid.UUID
    origin_type: str
    origin_id: uuid.UUID
    title: str
    currency: str
    total: int
    hourly: bool
    status: str
    created_at: datetime
    milestones: list[MilestoneOut]


class ContractPage(msgspec.Struct, kw_only=True):
    items: list[ContractOut]
    next_cursor: str | None
