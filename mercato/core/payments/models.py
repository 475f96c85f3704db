"""What mercato asked of payment gateways, and what came of it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, utcnow


class PaymentKind(StrEnum):
    CHARGE = "charge"
    """A client pays a milestone (plus any client fee) into escrow."""
    REFUND = "refund"
    """Money goes back to a client's payment method."""
    PAYOUT = "payout"
    """A developer's available balance goes to their payout method."""


class PaymentStatus(StrEnum):
    PENDING = "pending"
    """Asked; the gateway has not settled it yet."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Payment(UUIDPrimaryKey, Timestamps, Base):
    """One operation at a gateway. ``reference`` is mercato's id for it, sent to the gateway, so
    a retry or a webhook always finds the same row and settles it once."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_status_created_at", "status", "created_at"),)

    reference: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    gateway: Mapped[str] = mapped_column(String(40))
    gateway_id: Mapped[str] = mapped_column(String(200), default="")
    """The gateway's own id for the operation, once known."""
    status: Mapped[str] = mapped_column(String(10), default=PaymentStatus.PENDING)
    amount: Mapped[int] = mapped_column(BigInteger)
    """What the gateway moves, minor units (a charge includes the client fee)."""
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    """The client fee within a charge's amount, or its refunded share within a refund."""
    currency: Mapped[str] = mapped_column(String(3))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    """Who pays (charge), is paid back (refund) or is paid out (payout)."""
    contract_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contracts.id"), default=None, index=True
    )
    milestone_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("milestones.id"), default=None, index=True
    )
    charge_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payments.id"), default=None)
    """The charge a refund gives back."""
    message: Mapped[str] = mapped_column(String(300), default="")
    """Why it failed, as the gateway put it."""


class PaymentWebhook(UUIDPrimaryKey, Base):
    """A gateway's webhook event, kept so that a repeat of it is recognised and ignored."""

    __tablename__ = "payment_webhooks"
    __table_args__ = (UniqueConstraint("gateway", "event_id"),)

    gateway: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyKey(UUIDPrimaryKey, Base):
    """An ``Idempotency-Key``, the request it was first used for, and the response once there
    is one (see :mod:`mercato.core.payments.idempotency`)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    user_id: Mapped[uuid.UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the method, path and body."""
    status_code: Mapped[int | None] = mapped_column(default=None)
    """None while the first request is being answered."""
    content_type: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class PayoutMethod(UUIDPrimaryKey, Timestamps, Base):
    """Where a person's payouts go, registered with a gateway. mercato keeps only the
    gateway's token for it and a label safe to show (``Bank account ••6789``)."""

    __tablename__ = "payout_methods"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    gateway: Mapped[str] = mapped_column(String(40))
    token: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(100))


PAYMENT_MODELS: list[type[Base]] = [Payment, PaymentWebhook, IdempotencyKey, PayoutMethod]
