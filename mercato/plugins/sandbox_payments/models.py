"""The sandbox processor's own books: every operation it was asked for, by mercato's reference, and
the bank accounts payouts go to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


class SandboxOperation(UUIDPrimaryKey, Base):
    __tablename__ = "sandbox_operations"

    reference: Mapped[str] = mapped_column(String(64), unique=True)
    """mercato's reference: asking again with it returns this operation, never a second one."""
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(String(300), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxPayoutAccount(UUIDPrimaryKey, Base):
    """A bank account registered for payouts. The sandbox keeps the number, as a processor
    would; mercato keeps only ``token``."""

    __tablename__ = "sandbox_payout_accounts"

    token: Mapped[str] = mapped_column(String(64), unique=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    """mercato's id for the payout method: registering it again returns this account."""
    owner: Mapped[str] = mapped_column(String(80))
    account_number: Mapped[str] = mapped_column(String(34))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
