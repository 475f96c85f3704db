"""Posting to the escrow ledger: balanced, idempotent, concurrency-safe.

Every movement of money is one :meth:`Ledger.post` inside the caller's database transaction,
so the ledger changes together with the milestone or payout that caused it, or not at all:

* its legs sum to zero in each currency (else :class:`UnbalancedError`, a programming error);
* it applies once per idempotency key: the same key with the same legs returns the stored
  transaction (``replayed``), the same key with other legs is :class:`IdempotencyConflict`;
* no guarded account (:data:`~mercato.core.ledger.models.GUARDED`) goes below zero, else
  :class:`InsufficientFunds` and nothing is written.

**Locks.** The accounts a posting touches are locked (``SELECT … FOR UPDATE`` on PostgreSQL)
in one order, by owner, purpose and currency, so two postings never wait on each other in a
circle. A caller locks its own rows (contract, milestone, payout) before posting, never after.
On SQLite every write transaction holds the database lock (``BEGIN IMMEDIATE``) anyway.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.exceptions import ClientException
from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError

from mercato.core.db import conflict_insert, utcnow
from mercato.core.ledger.models import GUARDED, LedgerAccount, LedgerEntry, LedgerTransaction, Purpose

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

PLATFORM = "platform"
MAX_AMOUNT = 10**15
"""The largest amount one leg may move (minor units): far beyond any real payment."""


class UnbalancedError(ValueError):
    """The legs of a posting do not sum to zero in some currency, or are malformed."""


class InsufficientFunds(ClientException):
    """409: a guarded account would go below zero."""

    status_code = 409


class IdempotencyConflict(ClientException):
    """409: the idempotency key was used for a different movement."""

    status_code = 409


@dataclass(frozen=True, order=True)
class Account:
    """Names an account: who holds it, what for, in which currency."""

    owner: str
    purpose: Purpose
    currency: str

    @classmethod
    def user(cls, user_id: uuid.UUID, purpose: Purpose, currency: str) -> Account:
        return cls(f"user:{user_id}", purpose, currency)

    @classmethod
    def escrow(cls, contract_id: uuid.UUID, currency: str) -> Account:
        return cls(f"contract:{contract_id}", Purpose.ESCROW, currency)

    @classmethod
    def revenue(cls, currency: str, by: uuid.UUID | None = None) -> Account:
        """The platform's revenue; with ``by``, one of :data:`SHARDS` accounts chosen by it."""
        return cls(_sharded(PLATFORM, by), Purpose.PLATFORM_REVENUE, currency)

    @classmethod
    def gateway(cls, gateway_id: str, currency: str, by: uuid.UUID | None = None) -> Account:
        """A gateway's clearing account; with ``by``, one of :data:`SHARDS` chosen by it."""
        return cls(_sharded(f"gateway:{gateway_id}", by), Purpose.GATEWAY_CLEARING, currency)


SHARDS = 16
"""Accounts that every payment would touch (platform revenue, a gateway's clearing account)
are split into this many, chosen by the contract or person a movement belongs to: each
posting locks its accounts' rows, and one row for all would let one payment through at a time.
A total is the sum over the shards (owners ``platform``, ``platform#1`` … ``platform#15``)."""


def _sharded(owner: str, by: uuid.UUID | None) -> str:
    shard = 0 if by is None else by.int % SHARDS
    return owner if shard == 0 else f"{owner}#{shard}"


@dataclass(frozen=True)
class Leg:
    """One side of a posting: ``amount`` minor units onto ``account`` (negative takes away)."""

    account: Account
    amount: int


@dataclass(frozen=True)
class Posted:
    transaction: LedgerTransaction
    replayed: bool
    """True when the key had been posted before: nothing moved this time."""


def _checked(legs: Sequence[Leg]) -> list[Leg]:
    if len(legs) < 2:
        raise UnbalancedError("a posting needs at least two legs")
    sums: dict[str, int] = defaultdict(int)
    seen: set[Account] = set()
    for leg in legs:
        if type(leg.amount) is not int or leg.amount == 0 or abs(leg.amount) > MAX_AMOUNT:
            raise UnbalancedError(f"a leg moves a non-zero integer amount up to {MAX_AMOUNT}: {leg}")
        currency = leg.account.currency
        if len(currency) != 3 or not currency.isascii() or not currency.isupper():
            raise UnbalancedError(f"not an ISO 4217 currency code: {currency!r}")
        if leg.account in seen:
            raise UnbalancedError(f"an account appears twice in one posting: {leg.account}")
        seen.add(leg.account)
        sums[currency] += leg.amount
    unbalanced = {currency: total for currency, total in sums.items() if total}
    if unbalanced:
        raise UnbalancedError(f"legs do not sum to zero: {unbalanced}")
    return sorted(legs, key=lambda leg: leg.account)


def _fingerprint(kind: str, legs: Iterable[Leg]) -> str:
    canonical = [kind, [[leg.account.owner, leg.account.purpose, leg.account.currency, leg.amount]
                        for leg in legs]]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


class Ledger:
    """The ledger's one way in (see the module docstring)."""

    async def post(
        self,
        session: AsyncSession,
        *,
        key: str,
        kind: str,
        legs: Sequence[Leg],
        reference: dict[str, Any] | None = None,
    ) -> Posted:
        """Apply ``legs`` once for ``key`` within ``session``'s transaction."""
        ordered = _checked(legs)
        fingerprint = _fingerprint(kind, ordered)
        if (done := await self._by_key(session, key)) is not None:
            return _replay(done, fingerprint, key)
        accounts = await self._locked(session, [leg.account for leg in ordered])
        # Whoever held these locks before us has committed: a racing post of this key shows now.
        if (done := await self._by_key(session, key)) is not None:
            return _replay(done, fingerprint, key)
        for leg in ordered:
            account = accounts[leg.account]
            if leg.account.purpose in GUARDED and account.balance + leg.amount < 0:
                raise InsufficientFunds(
                    f"Not enough money in {leg.account.purpose.replace('_', ' ')} "
                    f"({account.balance} {leg.account.currency} minor units, {-leg.amount} needed)."
                )
        transaction = LedgerTransaction(
            id=uuid.uuid4(), idempotency_key=key, kind=kind, fingerprint=fingerprint,
            reference=reference or {}, created_at=utcnow(),
        )
        try:
            async with session.begin_nested():
                session.add(transaction)
                await session.flush()
        except IntegrityError:  # the same key, posted meanwhile with other legs
            done = await self._by_key(session, key)
            if done is None:
                raise
            return _replay(done, fingerprint, key)
        for leg in ordered:
            account = accounts[leg.account]
            session.add(LedgerEntry(id=uuid.uuid4(), transaction_id=transaction.id, account_id=account.id,
                                    amount=leg.amount, currency=leg.account.currency))
            account.balance += leg.amount
        await session.flush()
        return Posted(transaction, replayed=False)

    async def balance(self, session: AsyncSession, account: Account) -> int:
        """The account's balance (0 for an account never used)."""
        value = await session.scalar(select(LedgerAccount.balance).where(
            LedgerAccount.owner == account.owner, LedgerAccount.purpose == account.purpose,
            LedgerAccount.currency == account.currency))
        return int(value or 0)

    async def balances(self, session: AsyncSession, owner: str) -> dict[tuple[str, str], int]:
        """``(purpose, currency) → balance`` of every account ``owner`` holds."""
        rows = await session.execute(
            select(LedgerAccount.purpose, LedgerAccount.currency, LedgerAccount.balance)
            .where(LedgerAccount.owner == owner)
        )
        return {(purpose, currency): int(balance) for purpose, currency, balance in rows}

    async def verify(self, session: AsyncSession) -> list[str]:
        """What is wrong with the ledger, recomputed from its entries (nothing, normally):
        transactions that do not sum to zero in a currency, accounts whose cached balance is not
        the sum of their entries, guarded accounts below zero."""
        problems: list[str] = []
        unbalanced = await session.execute(
            select(LedgerEntry.transaction_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.transaction_id, LedgerEntry.currency)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
        problems += [f"transaction {tx} sums to {total} {currency}" for tx, currency, total in unbalanced]
        sums = (
            select(LedgerEntry.account_id, func.sum(LedgerEntry.amount).label("total"))
            .group_by(LedgerEntry.account_id).subquery()
        )
        accounts = await session.execute(
            select(LedgerAccount, func.coalesce(sums.c.total, 0))
            .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        )
        for account, total in accounts:
            name = f"{account.owner} {account.purpose} {account.currency}"
            if account.balance != total:
                problems.append(f"{name}: cached balance {account.balance}, entries sum to {total}")
            if account.purpose in GUARDED and total < 0:
                problems.append(f"{name} is negative: {total}")
        return problems

    async def _by_key(self, session: AsyncSession, key: str) -> LedgerTransaction | None:
        return await session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key))

    async def _locked(self, session: AsyncSession, wanted: list[Account]) -> dict[Account, LedgerAccount]:
        """The accounts, created when new, locked in :class:`Account` order."""
        names = [(a.owner, str(a.purpose), a.currency) for a in wanted]
        columns = tuple_(LedgerAccount.owner, LedgerAccount.purpose, LedgerAccount.currency)
        named = select(LedgerAccount.owner, LedgerAccount.purpose, LedgerAccount.currency)
        known = {tuple(row) for row in await session.execute(named.where(columns.in_(names)))}
        missing = [name for name in names if name not in known]
        if missing:
            now = utcnow()
            await session.execute(
                conflict_insert(session.get_bind().dialect.name)(LedgerAccount)
                .values([{"id": uuid.uuid4(), "owner": owner, "purpose": purpose, "currency": currency,
                          "balance": 0, "created_at": now} for owner, purpose, currency in missing])
                .on_conflict_do_nothing(index_elements=["owner", "purpose", "currency"])
            )
        rows = (await session.scalars(
            select(LedgerAccount).where(columns.in_(names))
            .order_by(LedgerAccount.owner, LedgerAccount.purpose, LedgerAccount.currency)
            .with_for_update().execution_options(populate_existing=True)
        )).all()
        by_name = {(row.owner, row.purpose, row.currency): row for row in rows}
        return {account: by_name[name] for account, name in zip(wanted, names, strict=True)}


def _replay(done: LedgerTransaction, fingerprint: str, key: str) -> Posted:
    if done.fingerprint != fingerprint:
        raise IdempotencyConflict(f"The idempotency key {key!r} was already used for a different movement.")
    return Posted(done, replayed=True)
