"""The contracts API's bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

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


class FundIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    payment_method: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """A card number or token the gateway takes (sandbox: ``4242 4242 4242 4242``)."""
    gateway: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    """The gateway's id; ``[payments] default_gateway`` when left out."""


class SubmitIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    """What was done, for the client."""


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
    created_at: datetime
    milestones: list[MilestoneOut]


class ContractPage(msgspec.Struct, kw_only=True):
    items: list[ContractOut]
    next_cursor: str | None
