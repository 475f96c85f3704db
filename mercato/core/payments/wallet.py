"""A person's money: balances by currency, the ledger transactions that touched them (their own
balances and the escrow of their contracts), and payouts of the available balance through a
gateway to one of their payout methods.

A payout takes the money off the available balance first (``developer_available`` → the
gateway's clearing account, in the transaction that records the pending payout), then asks
the gateway, then settles: a failed payout puts the money back with a second, reversing
transaction. Two payouts racing for one balance cannot both take it: the ledger locks the
account and refuses to go below zero.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import structlog
from sqlalchemy import func, or_, select

from mercato.core.contracts.models import Contract, Milestone
from mercato.core.errors import field_error
from mercato.core.events import Event, EventPayload, emit
from mercato.core.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, Purpose
from mercato.core.ledger.services import Account, Ledger, Leg
from mercato.core.pagination import newest_first
from mercato.core.payments.checks import ask_gateway, schedule_check
from mercato.core.payments.gateways import GatewayError, Outcome, PayoutRequest, UnknownGateway
from mercato.core.payments.models import Payment, PaymentKind, PaymentStatus
from mercato.core.payments.payout_methods import PayoutMethods
from mercato.core.states import InvalidTransition
from mercato.core.timers import TimerHandler

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site
    from mercato.core.timers.models import Timer

log = structlog.get_logger("mercato.payments")

PAYOUT_CHECK = "payment.payout_check"
KIND_LABELS = {
    "funding": "Milestone funded",
    "late_funding": "Late payment, owed back",
    "release": "Payment released",
    "hold_end": "Hold ended",
    "refund": "Refund",
    "refund_paid": "Refund sent to card",
    "payout": "Payout",
    "payout_reversal": "Payout returned",
}
"""What each kind of ledger transaction is called on a wallet page and a receipt."""


class Balance(msgspec.Struct, kw_only=True):
    currency: str
    available: int
    """Released to you and past its hold: yours to pay out (minor units)."""
    pending: int
    """Released to you, on hold for ``payout_hold_days``."""
    in_escrow: int
    """Held for milestones of your contracts, not yet released or refunded."""
    refunds: int
    """Refunded to you, on its way back to your payment method."""


class WalletOut(msgspec.Struct, kw_only=True):
    balances: list[Balance]


class EntryOut(msgspec.Struct, kw_only=True):
    purpose: str
    """Which balance: ``developer_available``, ``developer_pending``, ``client_funding`` (refunds)
    or ``escrow`` (of one of your contracts)."""
    amount: int
    """Minor units; negative is money leaving this balance."""
    currency: str


class TransactionOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    """funding, release, hold_end, refund, refund_paid, payout, payout_reversal, late_funding."""
    created_at: datetime
    entries: list[EntryOut]
    """What it did to your balances (and to the escrow of your contracts)."""
    description: str
    """In words: ``Milestone funded: Design``, ``Payout to Bank account ••6789``."""
    receipt_url: str
    """Its printable receipt, a page of the site."""
    contract_id: str | None = None
    milestone_id: str | None = None
    payment_id: str | None = None


class TransactionPage(msgspec.Struct, kw_only=True):
    items: list[TransactionOut]
    next_cursor: str | None


class PayoutIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: int
    """Minor units, at least ``[payments] min_payout``."""
    currency: str
    payout_method_id: uuid.UUID
    """One of your payout methods (``GET /api/v1/wallet/payout-methods``); it names the gateway."""


class PayoutOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    status: str
    """pending, succeeded or failed."""
    amount: int
    currency: str
    gateway: str
    destination: str
    """The payout method's label (``Bank account ••6789``)."""
    message: str
    """Why it failed, as the gateway put it."""
    created_at: datetime
    receipt_url: str


class PayoutRequested(EventPayload, frozen=True):
    event_type: ClassVar[str] = "payout.requested"
    payout_id: uuid.UUID
    user_id: uuid.UUID
    amount: int
    currency: str


class PayoutPaid(PayoutRequested, frozen=True):
    event_type: ClassVar[str] = "payout.paid"


class PayoutFailed(PayoutRequested, frozen=True):
    event_type: ClassVar[str] = "payout.failed"
    message: str = ""


def owner_of(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def receipt_url(transaction_id: uuid.UUID) -> str:
    return f"/wallet/receipts/{transaction_id}"


@dataclass(frozen=True)
class StartedPayout:
    """A payout taken off the balance and recorded, to be sent to its gateway."""

    payment: Payment
    request: PayoutRequest


class Wallet:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.ledger = Ledger()

    async def balances(self, session: AsyncSession, user_id: uuid.UUID) -> WalletOut:
        own = await self.ledger.balances(session, owner_of(user_id))
        escrow_rows = await session.execute(
            select(LedgerAccount.currency, func.sum(LedgerAccount.balance))
            .where(LedgerAccount.purpose == Purpose.ESCROW,
                   LedgerAccount.owner.in_(await _owners(session, user_id)))
            .group_by(LedgerAccount.currency)
        )
        escrow = {currency: int(total or 0) for currency, total in escrow_rows}
        currencies = sorted({currency for _, currency in own} | set(escrow))
        return WalletOut(balances=[
            Balance(currency=currency, available=own.get((Purpose.DEVELOPER_AVAILABLE, currency), 0),
                    pending=own.get((Purpose.DEVELOPER_PENDING, currency), 0),
                    in_escrow=escrow.get(currency, 0),
                    refunds=own.get((Purpose.CLIENT_FUNDING, currency), 0))
            for currency in currencies
        ])

    async def transactions(self, session: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: str | None,
                           currency: str | None = None, kind: str | None = None) -> TransactionPage:
        owners = [owner_of(user_id), *await _owners(session, user_id)]
        accounts = select(LedgerAccount.id).where(LedgerAccount.owner.in_(owners))
        if currency:
            accounts = accounts.where(LedgerAccount.currency == currency)
        touched = select(LedgerEntry.transaction_id).where(LedgerEntry.account_id.in_(accounts))
        query = select(LedgerTransaction).where(LedgerTransaction.id.in_(touched))
        if kind:
            query = query.where(LedgerTransaction.kind == kind)
        page, next_cursor = await newest_first(session, query, moment=LedgerTransaction.created_at,
                                               row_id=LedgerTransaction.id, cursor=cursor, limit=limit)
        described = await self._described(session, owners, page)
        return TransactionPage(items=described, next_cursor=next_cursor)

    async def _described(self, session: AsyncSession, owners: list[str],
                         page: list[LedgerTransaction]) -> list[TransactionOut]:
        if not page:
            return []
        rows = await session.execute(
            select(LedgerEntry.transaction_id, LedgerAccount.purpose, LedgerEntry.amount,
                   LedgerEntry.currency)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerEntry.transaction_id.in_([t.id for t in page]), LedgerAccount.owner.in_(owners))
            .order_by(LedgerAccount.purpose)
        )
        entries: dict[uuid.UUID, list[EntryOut]] = {}
        for transaction_id, purpose, amount, currency in rows:
            entries.setdefault(transaction_id, []).append(EntryOut(purpose=purpose, amount=amount,
                                                                   currency=currency))
        milestones = {milestone_of(t) for t in page} - {None}
        titles = await milestone_titles(session, list(milestones))
        contracts: dict[str, str] = {}
        if milestones:  # a hold's end names only its release: its milestone and contract come from there
            found = await session.execute(select(Milestone.id, Milestone.contract_id)
                                          .where(Milestone.id.in_([uuid.UUID(m) for m in milestones if m])))
            contracts = {str(milestone_id): str(contract_id) for milestone_id, contract_id in found}
        out = []
        for t in page:
            milestone = milestone_of(t)
            out.append(TransactionOut(
                id=t.id, kind=t.kind, created_at=t.created_at, entries=entries.get(t.id, []),
                description=describe(t, titles), receipt_url=receipt_url(t.id),
                contract_id=t.reference.get("contract") or contracts.get(milestone or ""),
                milestone_id=milestone, payment_id=t.reference.get("payment"),
            ))
        return out

    # -- payouts -------------------------------------------------------------------------
    async def pay_out(self, user_id: uuid.UUID, data: PayoutIn) -> Payment:
        """Take the amount off the available balance, ask the gateway to pay it to the payout
        method, and apply its answer: the payment ``succeeded``, ``failed`` (the money is back) or
        ``pending`` (the gateway confirms later, or could not be reached). 404 for a payout method
        that is not the person's, 400 naming ``currency`` for one its gateway does not pay out,
        409 below the minimum or beyond the available balance."""
        async with self.site.db.transaction() as session:
            started = await self.begin_payout(session, user_id, data)
            payment = started.payment
        try:
            result = await self.site.gateways.get(payment.gateway).payout(started.request)
        except GatewayError as exc:  # settled later: by webhook, or by the check
            log.warning("payout outcome unknown", gateway=payment.gateway, reference=payment.reference,
                        error=repr(exc))
            return payment
        async with self.site.db.transaction() as session:
            settled = await self.settle_payout(session, payment.reference, result.outcome,
                                               gateway_ref=result.gateway_id, message=result.message)
        return settled or payment

    async def begin_payout(self, session: AsyncSession, user_id: uuid.UUID, data: PayoutIn) -> StartedPayout:
        """Take the amount off the available balance and record a pending payout to one of the
        person's payout methods (see :meth:`pay_out` for the refusals). Commit, then send
        ``request`` to the gateway, then :meth:`settle_payout`."""
        method = await PayoutMethods(self.site).owned(session, user_id, data.payout_method_id)
        try:
            gateway = self.site.gateways.get(method.gateway)
        except UnknownGateway:
            raise field_error("payout_method_id", "This payout method's gateway is no longer installed; "
                              "add another payout method.") from None
        if data.currency not in gateway.currencies:
            raise field_error("currency", f"{gateway.name} does not pay out in {data.currency}.")
        minimum = self.site.settings.payments.min_payout
        if data.amount < minimum:
            raise InvalidTransition(f"The smallest payout is {minimum} minor units.")
        payment = Payment(
            id=uuid.uuid4(), reference=f"po_{uuid.uuid4().hex}", kind=PaymentKind.PAYOUT, gateway=gateway.id,
            status=PaymentStatus.PENDING, amount=data.amount, fee=0, currency=data.currency, user_id=user_id,
        )
        session.add(payment)
        await session.flush()
        # The label is kept with the movement: the receipt names the destination even after the
        # payout method is removed.
        await self.ledger.post(session, key=f"payout:{payment.reference}", kind="payout", legs=[
            Leg(Account.user(user_id, Purpose.DEVELOPER_AVAILABLE, data.currency), -data.amount),
            Leg(Account.gateway(gateway.id, data.currency, by=user_id), data.amount),
        ], reference={"payment": str(payment.id), "payout_method": str(method.id),
                      "destination": method.label})
        await schedule_check(session, PAYOUT_CHECK, payment.reference)
        emit(session, Event.of(PayoutRequested(payout_id=payment.id, user_id=user_id, amount=data.amount,
                                               currency=data.currency), actor_id=user_id))
        request = PayoutRequest(reference=payment.reference, amount=data.amount, currency=data.currency,
                                destination=method.token)
        return StartedPayout(payment, request)

    async def payout_out(self, session: AsyncSession, payment: Payment) -> PayoutOut:
        """The API's view of a payout, with its destination and receipt."""
        key = f"payout:{payment.reference}"
        posted = await session.scalar(select(LedgerTransaction)
                                      .where(LedgerTransaction.idempotency_key == key))
        assert posted is not None, "every payout is recorded in the ledger when it begins"
        return PayoutOut(id=payment.id, status=payment.status, amount=payment.amount,
                         currency=payment.currency, gateway=payment.gateway,
                         destination=str(posted.reference.get("destination", "")),
                         message=payment.message, created_at=payment.created_at,
                         receipt_url=receipt_url(posted.id))

    async def settle_payout(self, session: AsyncSession, reference: str, outcome: Outcome, *,
                            gateway_ref: str = "", message: str = "") -> Payment | None:
        """Apply a gateway's answer about a payout, once; a failure gives the money back."""
        payment = await session.scalar(
            select(Payment).where(Payment.reference == reference, Payment.kind == PaymentKind.PAYOUT)
            .with_for_update().execution_options(populate_existing=True)
        )
        if payment is None or payment.status != PaymentStatus.PENDING or outcome == Outcome.PENDING:
            return payment
        payment.gateway_id = gateway_ref or payment.gateway_id
        payload: dict[str, Any] = {"payout_id": payment.id, "user_id": payment.user_id,
                                   "amount": payment.amount, "currency": payment.currency}
        if outcome == Outcome.SUCCEEDED:
            payment.status = PaymentStatus.SUCCEEDED
            emit(session, Event.of(PayoutPaid(**payload)))
            return payment
        payment.status = PaymentStatus.FAILED
        payment.message = message[:300] or "The payout failed."
        began = await session.scalar(select(LedgerTransaction.reference).where(
            LedgerTransaction.idempotency_key == f"payout:{payment.reference}"))
        returned = {"payment": str(payment.id)}
        if began and began.get("destination"):
            returned["destination"] = str(began["destination"])
        key = f"payout-reversal:{payment.reference}"
        await self.ledger.post(session, key=key, kind="payout_reversal", legs=[
            Leg(Account.gateway(payment.gateway, payment.currency, by=payment.user_id), -payment.amount),
            Leg(Account.user(payment.user_id, Purpose.DEVELOPER_AVAILABLE, payment.currency), payment.amount),
        ], reference=returned)
        emit(session, Event.of(PayoutFailed(**payload, message=payment.message)))
        return payment

    async def _check_payout(self, session: AsyncSession, timer: Timer) -> None:
        await ask_gateway(self.site, session, timer, "payout", self.settle_payout)

    def timer_handlers(self) -> list[TimerHandler]:
        return [TimerHandler(PAYOUT_CHECK, self._check_payout)]


async def _owners(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    ids = await session.scalars(select(Contract.id).where(
        or_(Contract.client_id == user_id, Contract.developer_id == user_id)))
    return [f"contract:{contract_id}" for contract_id in ids]


def milestone_of(transaction: LedgerTransaction) -> str | None:
    """The milestone a movement belongs to (a hold's is in the key of the release it ends)."""
    found = transaction.reference.get("milestone")
    if found is None and str(transaction.reference.get("release", "")).startswith("release:"):
        found = str(transaction.reference["release"]).split(":")[1]
    return str(found) if found else None


async def milestone_titles(session: AsyncSession, ids: list[str | None]) -> dict[str, str]:
    wanted = {uuid.UUID(found) for found in ids if found}
    if not wanted:
        return {}
    rows = await session.execute(select(Milestone.id, Milestone.title).where(Milestone.id.in_(wanted)))
    return {str(milestone_id): title for milestone_id, title in rows}


def describe(transaction: LedgerTransaction, titles: dict[str, str]) -> str:
    """A movement in words, for a history and a receipt's heading."""
    label = KIND_LABELS.get(transaction.kind, transaction.kind.replace("_", " ").capitalize())
    destination = transaction.reference.get("destination")
    if transaction.kind == "payout" and destination:
        return f"Payout to {destination}"
    if transaction.kind == "payout_reversal" and destination:
        return f"Payout to {destination} returned"
    milestone = milestone_of(transaction)
    if milestone and milestone in titles:
        return f"{label}: {titles[milestone]}"
    return label
