"""Events of the contracts domain."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mercato.core.events import EventPayload


class ContractCreated(EventPayload, frozen=True):
    event_type: ClassVar[str] = "contract.created"
    contract_id: uuid.UUID
    client_id: uuid.UUID
    developer_id: uuid.UUID
    origin_type: str
    origin_id: uuid.UUID
    currency: str
    total: int


class _MilestoneEvent(EventPayload, frozen=True):
    milestone_id: uuid.UUID
    contract_id: uuid.UUID
    client_id: uuid.UUID
    developer_id: uuid.UUID
    amount: int
    currency: str


class MilestoneFunded(_MilestoneEvent, frozen=True):
    event_type: ClassVar[str] = "milestone.funded"
    client_fee: int


class MilestoneFundingFailed(_MilestoneEvent, frozen=True):
    event_type: ClassVar[str] = "milestone.funding_failed"
    message: str


class MilestoneSubmitted(_MilestoneEvent, frozen=True):
    event_type: ClassVar[str] = "milestone.submitted"
    note: str


class MilestoneChangesRequested(_MilestoneEvent, frozen=True):
    event_type: ClassVar[str] = "milestone.changes_requested"
    message: str


class MilestoneApproved(_MilestoneEvent, frozen=True):
    event_type: ClassVar[str] = "milestone.approved"
    automatic: bool
    """True when ``auto_approve_days`` passed without the client's answer."""


class MilestoneCancelled(_MilestoneEvent, frozen=True):
    event_type: ClassVar[str] = "milestone.cancelled"
    refunded: int
    """Minor units returned from escrow to the client."""


class PaymentReleased(_MilestoneEvent, frozen=True):
    """Money left escrow for the developer: ``amount`` in all, ``fee`` of it to the platform."""

    event_type: ClassVar[str] = "payment.released"
    fee: int
    available_at: str
    """ISO 8601: when the developer can pay it out."""


class ContractCompleted(EventPayload, frozen=True):
    """Every milestone is settled and a party closed the contract."""

    event_type: ClassVar[str] = "contract.completed"
    contract_id: uuid.UUID
    client_id: uuid.UUID
    developer_id: uuid.UUID
    currency: str
    paid: int
    """Minor units released to the developer over the contract (fees included)."""


class ContractCancelled(ContractCompleted, frozen=True):
    """A party ended the contract early; nothing was left in escrow."""

    event_type: ClassVar[str] = "contract.cancelled"


class MilestoneProposed(_MilestoneEvent, frozen=True):
    """A party proposed one more milestone; the other accepts or declines it."""

    event_type: ClassVar[str] = "milestone.proposed"
    proposed_by: uuid.UUID
    title: str


class MilestoneAccepted(MilestoneProposed, frozen=True):
    event_type: ClassVar[str] = "milestone.accepted"


class MilestoneDisputed(_MilestoneEvent, frozen=True):
    """A dispute froze the milestone's escrow (the disputes plugin tells the rest)."""

    event_type: ClassVar[str] = "milestone.disputed"
    reason: str
    dispute_id: uuid.UUID


class MilestoneSettled(_MilestoneEvent, frozen=True):
    """A dispute ended: ``released`` of the escrow went to the developer, ``refunded`` to the client."""

    event_type: ClassVar[str] = "milestone.settled"
    released: int
    refunded: int
    note: str
    """The decision's reasons, for both parties."""
    dispute_id: uuid.UUID


class MilestoneAutoApproveSoon(_MilestoneEvent, frozen=True):
    """A submitted milestone will be approved automatically soon unless the client answers."""

    event_type: ClassVar[str] = "milestone.auto_approve_soon"
    approve_at: str
    """ISO 8601: when it is approved without an answer."""
