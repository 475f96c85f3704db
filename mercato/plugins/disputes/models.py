"""A dispute over one milestone's escrow."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, Timestamps, UTCDateTime, UUIDPrimaryKey


class DisputeStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    SPLIT = "split"
    """An admin decided how the escrow is shared."""
    DEFAULT = "default"
    """The other party did not respond in time: the opener got what they asked for."""


class Dispute(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "disputes"

    contract_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    milestone_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("milestones.id", ondelete="CASCADE"), index=True
    )
    opened_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    respondent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=DisputeStatus.OPEN, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    """Minor units frozen in escrow when it was opened."""
    currency: Mapped[str] = mapped_column(String(3))
    respond_by: Mapped[datetime] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    outcome: Mapped[str] = mapped_column(String(10), default="")
    developer_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Minor units of the escrow released to the developer; the rest went back to the client."""
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
