"""The contracts API's bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec


class MilestoneOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contract_id: uuid.UUID
    position: int
    title: str
    description: str
    amount: int
    """Minor units."""
    currency: str
    due_days: int | None
    status: str
    """pending, funding, funded, submitted, changes_requested, approved, cancelled or disputed."""
    released: int
    """Minor units paid out of escrow to the developer so far."""
    refunded: int
    """Minor units returned to the client."""
    in_escrow: int
    """Minor units held for this milestone now."""
    client_fee: int
    """What the client paid on top when funding."""
    funded_at: datetime | None
    submitted_at: datetime | None
    approved_at: datetime | None
    proposed_by: uuid.UUID | None
    """Who proposed it, for a milestone added after the contract began."""


class ContractFileOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    url: str
    """Where the contract's parties download it."""
    created_at: datetime


class ActivityOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    """The event type of the step: ``milestone.submitted``, ``payment.released``, ``dispute.opened``, …"""
    milestone_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    """Who took the step; null for the system (auto-approval, a payment's confirmation)."""
    message: str
    amount: int | None
    data: dict[str, Any]
    created_at: datetime
    files: list[ContractFileOut]


class ActivityPage(msgspec.Struct, kw_only=True):
    items: list[ActivityOut]
    next_cursor: str | None


class MilestoneIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    amount: Annotated[int, msgspec.Meta(ge=1, le=100_000_000_00)]
    """Minor units of the contract's currency."""
    description: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    due_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class FundIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    payment_method: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """A card number or token the gateway takes (sandbox: ``4242 4242 4242 4242``)."""
    gateway: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    """The gateway's id; ``[payments] default_gateway`` when left out."""


class SubmitIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    """What was done, for the client."""
    files: Annotated[list[uuid.UUID], msgspec.Meta(max_length=10)] = []
    """Deliverables uploaded first with ``POST /api/v1/contracts/{id}/files``."""


class ChangesIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
    """What should change."""


class ReleaseIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(ge=1)]
    """Minor units to pay the developer now; the rest stays in escrow."""


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
    """pending_funding, active, completed, cancelled or disputed."""
    created_at: datetime
    ended_at: datetime | None
    milestones: list[MilestoneOut]


class ContractPage(msgspec.Struct, kw_only=True):
    items: list[ContractOut]
    next_cursor: str | None
