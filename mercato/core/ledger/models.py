"""The escrow ledger's tables: accounts, immutable transactions and their entries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, UUIDPrimaryKey, utcnow


class Purpose(StrEnum):
    """What an account holds. Each owner has at most one account per purpose and currency."""

    CLIENT_FUNDING = "client_funding"
    """A client's money the platform holds outside any contract (say, a refund not yet paid back)."""
    ESCROW = "escrow"
    """A contract's funded, unreleased money."""
    DEVELOPER_PENDING = "developer_pending"
    """Released to a developer, on hold for ``payout_hold_days``."""
    DEVELOPER_AVAILABLE = "developer_available"
    """A developer's money ready to pay out."""
    PLATFORM_REVENUE = "platform_revenue"
    """Fees the platform earned."""
    GATEWAY_CLEARING = "gateway_clearing"
    """The outside world through one payment gateway: negative is money that came in through it."""


GUARDED = frozenset(purpose for purpose in Purpose if purpose != Purpose.GATEWAY_CLEARING)
"""Purposes whose balance never goes below zero; only a gateway's clearing account may."""


class LedgerAccount(UUIDPrimaryKey, Base):
    """An account: an owner's money for one purpose in one currency.

    ``owner`` names the holder: ``user:<id>``, ``contract:<id>``, ``gateway:<id>`` or
    ``platform`` (see :class:`~mercato.core.ledger.services.Account`). ``balance`` caches the sum
    of the account's entries; it changes only in the transaction that adds them, under the
    account's row lock, and :meth:`~mercato.core.ledger.services.Ledger.verify` recomputes it.
    """

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("owner", "purpose", "currency"),)

    owner: Mapped[str] = mapped_column(String(80))
    purpose: Mapped[str] = mapped_column(String(30))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerTransaction(UUIDPrimaryKey, Base):
    """One movement of money, applied once per ``idempotency_key`` and never changed."""

    __tablename__ = "ledger_transactions"

    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    """``funding``, ``release``, ``refund``, ``payout``, …: what moved the money."""
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the kind and the entries: the same key with other entries is a conflict."""
    reference: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What it belongs to (contract, milestone, payout ids), for history and receipts."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LedgerEntry(UUIDPrimaryKey, Base):
    """One side of a transaction: a signed amount on one account. A transaction's entries sum to
    zero in each currency."""

    __tablename__ = "ledger_entries"

    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    """Minor units; positive adds to the account's balance."""
    currency: Mapped[str] = mapped_column(String(3))


class ImmutableLedgerError(RuntimeError):
    """Ledger transactions and entries are written once; a correction is a new transaction."""


def _refuse_change(_mapper: Any, _connection: Any, target: Any) -> None:
    raise ImmutableLedgerError(f"{type(target).__name__} rows are never changed or deleted")


for _model in (LedgerTransaction, LedgerEntry):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)


LEDGER_MODELS: list[type[Base]] = [LedgerAccount, LedgerTransaction, LedgerEntry]
