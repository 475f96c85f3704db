"""Contracts and milestones."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, utcnow


class ContractStatus(StrEnum):
    PENDING_FUNDING = "pending_funding"
    """Agreed; waits for the client to fund the first milestone."""
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DISPUTED = "disputed"


class MilestoneStatus(StrEnum):
    PROPOSED = "proposed"
    """Added to a running contract by one party; waits for the other to accept it."""
    PENDING = "pending"
    FUNDING = "funding"
    """The client's payment is on its way (a gateway confirms it by webhook)."""
    FUNDED = "funded"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    CANCELLED = "cancelled"
    DISPUTED = "disputed"


IN_ESCROW = frozenset({
    MilestoneStatus.FUNDED,
    MilestoneStatus.SUBMITTED,
    MilestoneStatus.CHANGES_REQUESTED,
    MilestoneStatus.DISPUTED,
})
"""Milestone states in which its unreleased money is in escrow."""


class Contract(UUIDPrimaryKey, Timestamps, Base):
    """An agreement between a client and a developer.

    The origin (a proposal, a service order) is known only by kind and id: contracts never
    import the domains that create them.
    """

    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("origin_type", "origin_id"),)

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    developer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    origin_type: Mapped[str] = mapped_column(String(20))
    """``proposal`` or ``service_order``."""
    origin_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(Integer)
    """Minor units: the sum of the milestones."""
    hourly: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default=ContractStatus.PENDING_FUNDING, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Milestone(UUIDPrimaryKey, Timestamps, Base):
    """A part of the work paid on its own."""

    __tablename__ = "milestones"

    contract_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[int] = mapped_column(Integer)
    """Minor units of the contract's currency."""
    due_days: Mapped[int | None] = mapped_column(Integer, default=None)
    """Days after the contract starts; None when not agreed."""
    status: Mapped[str] = mapped_column(String(20), default=MilestoneStatus.PENDING)
    released: Mapped[int] = mapped_column(BigInteger, default=0)
    """Minor units paid out of escrow to the developer so far (partial releases and approval)."""
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    """Minor units returned from escrow to the client."""
    client_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    """What the client paid on top when funding (the fee policy's client fee)."""
    funded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    proposed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    """Who proposed it, for a milestone added after the contract began (the other party accepts)."""

    @property
    def in_escrow(self) -> int:
        """Minor units held in escrow for this milestone now."""
        return self.amount - self.released - self.refunded if self.status in IN_ESCROW else 0


class ContractActivity(UUIDPrimaryKey, Base):
    """One step on a contract's timeline: a milestone funded, work submitted with its note,
    changes asked for, money released, a dispute's evidence. Written in the transaction that
    takes the step; never changed afterwards."""

    __tablename__ = "contract_activity"
    __table_args__ = (Index("ix_contract_activity_contract_id_created_at", "contract_id", "created_at"),)

    contract_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    milestone_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("milestones.id", ondelete="CASCADE"), default=None
    )
    kind: Mapped[str] = mapped_column(String(60))
    """The event type of the step (``milestone.submitted``, ``dispute.evidence_added``, …)."""
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    """Who took it; None for the system (auto-approval, a gateway's webhook)."""
    message: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ContractFile(UUIDPrimaryKey, Base):
    """A file a party uploaded to a contract: a deliverable or a dispute's evidence. Uploaded
    first (``activity_id`` None, visible only to its uploader), then attached to the step that
    hands it over."""

    __tablename__ = "contract_files"

    contract_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    activity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contract_activity.id", ondelete="CASCADE"), default=None, index=True
    )
    uploader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


CONTRACT_MODELS: list[type[Base]] = [Contract, Milestone, ContractActivity, ContractFile]
