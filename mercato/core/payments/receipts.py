"""Receipts: one ledger transaction told as a printable statement, with its line items and fees.

A receipt is shown to the people the movement concerns: those whose own balances it moved, and
the two parties of the contract it belongs to (a funding moves only the contract's escrow, yet
the client paid it and the developer works for it). Anyone else gets a 404, as if it did not
exist. Every figure comes from the ledger and the gateway's payment row; a card's last four
digits are asked of the gateway, and left out when it does not say.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from litestar.exceptions import NotFoundException
from sqlalchemy import select

from mercato.core.accounts.models import User
from mercato.core.contracts.milestones import HOLD_END
from mercato.core.contracts.models import Contract
from mercato.core.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, Purpose
from mercato.core.payments.gateways import GatewayError, UnknownGateway
from mercato.core.payments.models import Payment, PaymentKind, PaymentStatus
from mercato.core.payments.wallet import KIND_LABELS, describe, milestone_of, milestone_titles, owner_of
from mercato.core.timers.models import Timer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

log = structlog.get_logger("mercato.payments")

TITLES = {
    "funding": "Payment receipt",
    "late_funding": "Payment receipt",
    "release": "Release statement",
    "hold_end": "Funds available",
    "refund": "Refund receipt",
    "refund_paid": "Refund receipt",
    "payout": "Payout receipt",
    "payout_reversal": "Payout returned",
}


@dataclass(frozen=True)
class Line:
    """One line item: a positive amount, shown taken away when ``deducted``."""

    label: str
    amount: int
    deducted: bool = False
    total: bool = False
    """The bottom line."""


@dataclass
class Receipt:
    id: uuid.UUID
    kind: str
    title: str
    description: str
    created_at: datetime
    currency: str
    lines: list[Line] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    """``(label, value)`` facts: who paid whom, for what, where it went, when it is available."""
    status: str | None = None
    """For money at a gateway: ``pending``, ``succeeded`` or ``failed``."""
    note: str = ""
    contract_id: uuid.UUID | None = None
    contract_title: str = ""
    card_charge: tuple[str, str] | None = None
    """(gateway, charge reference) whose card to name, when there is one."""


def format_moment(moment: datetime) -> str:
    """``25 November 2026, 14:03 UTC``."""
    return f"{moment.day} {moment.strftime('%B %Y, %H:%M')} UTC"


class Receipts:
    def __init__(self, site: Site) -> None:
        self.site = site

    async def receipt(self, user_id: uuid.UUID, transaction_id: uuid.UUID) -> Receipt:
        """The receipt of a ledger transaction, for someone it concerns; 404 for anyone else."""
        async with self.site.db.reading() as session:
            receipt = await self._read(session, user_id, transaction_id)
        if receipt.card_charge is not None:
            last4 = await self._card_last4(*receipt.card_charge)
            if last4:
                receipt.details.append(("Card", f"\u2022\u2022\u2022\u2022 {last4}"))
        return receipt

    async def _card_last4(self, gateway_id: str, reference: str) -> str:
        try:
            found = await self.site.gateways.get(gateway_id).retrieve("charge", reference)
        except (GatewayError, UnknownGateway) as exc:  # a receipt without the card is still a receipt
            log.info("card of a charge unknown", gateway=gateway_id, reference=reference, error=repr(exc))
            return ""
        return found.card_last4 if found else ""

    async def _read(self, session: AsyncSession, user_id: uuid.UUID, transaction_id: uuid.UUID) -> Receipt:
        transaction = await session.get(LedgerTransaction, transaction_id)
        if transaction is None:
            raise NotFoundException("No such receipt.")
        rows = (await session.execute(
            select(LedgerAccount.owner, LedgerAccount.purpose, LedgerEntry.amount, LedgerEntry.currency)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerEntry.transaction_id == transaction.id)
        )).all()
        moved: dict[str, int] = {}
        for _owner, purpose, amount, _currency in rows:
            moved[purpose] = moved.get(purpose, 0) + amount
        contract = await self._contract(session, transaction.reference, [row.owner for row in rows])
        parties = {contract.client_id, contract.developer_id} if contract else set()
        if owner_of(user_id) not in {row.owner for row in rows} and user_id not in parties:
            raise NotFoundException("No such receipt.")
        if transaction.kind == "hold_end":  # only the developer's; shown with the release's contract
            release = await session.scalar(select(LedgerTransaction).where(
                LedgerTransaction.idempotency_key == str(transaction.reference.get("release", ""))))
            contract = await self._contract(session, release.reference if release else {}, [])
        titles = await milestone_titles(session, [milestone_of(transaction)])
        receipt = Receipt(
            id=transaction.id, kind=transaction.kind,
            title=TITLES.get(transaction.kind, KIND_LABELS.get(transaction.kind, "Receipt")),
            description=describe(transaction, titles), created_at=transaction.created_at,
            currency=rows[0].currency if rows else "",
            contract_id=contract.id if contract else None, contract_title=contract.title if contract else "",
        )
        names = await self._names(session, contract)
        milestone = titles.get(milestone_of(transaction) or "")
        if milestone:
            receipt.details.append(("Milestone", milestone))
        if contract:
            receipt.details.append(("Contract", contract.title))
        build = getattr(self, f"_{transaction.kind}", None)
        if build is not None:
            await build(session, receipt, transaction, moved, names)
        else:  # a kind from a newer version or a plugin: the movement as the ledger has it
            receipt.lines = [Line(purpose.replace("_", " ").capitalize(), abs(amount), deducted=amount < 0)
                             for purpose, amount in moved.items()]
        return receipt

    @staticmethod
    async def _contract(session: AsyncSession, reference: dict[str, Any],
                        owners: list[str]) -> Contract | None:
        found = reference.get("contract") or next(
            (owner.removeprefix("contract:") for owner in owners if owner.startswith("contract:")), None)
        if not found or found == "None":
            return None
        return await session.get(Contract, uuid.UUID(str(found)))

    @staticmethod
    async def _names(session: AsyncSession, contract: Contract | None) -> dict[str, str]:
        if contract is None:
            return {}
        rows = await session.execute(select(User.id, User.display_name)
                                     .where(User.id.in_([contract.client_id, contract.developer_id])))
        found = {user_id: name for user_id, name in rows}
        return {"client": found.get(contract.client_id, "Deleted user"),
                "developer": found.get(contract.developer_id, "Deleted user")}

    @staticmethod
    async def _payment(session: AsyncSession, transaction: LedgerTransaction) -> Payment | None:
        found = transaction.reference.get("payment")
        return await session.get(Payment, uuid.UUID(str(found))) if found else None

    # -- one builder per kind: _<kind>(session, receipt, transaction, moved, names) ----------------
    async def _funding(self, session: AsyncSession, receipt: Receipt, transaction: LedgerTransaction,
                       moved: dict[str, int], names: dict[str, str]) -> None:
        payment = await self._payment(session, transaction)
        total = payment.amount if payment else -moved.get(Purpose.GATEWAY_CLEARING, 0)
        fee = payment.fee if payment else 0
        receipt.lines = [Line("Milestone amount", total - fee), Line("Client fee", fee),
                         Line("Total charged", total, total=True)]
        receipt.details += [("Paid by", names.get("client", "")), ("For work by", names.get("developer", ""))]
        if transaction.kind == "funding":
            receipt.details.append(("Held in", "Escrow, until the client releases it to the developer"))
        if payment is not None:
            receipt.status = payment.status
            receipt.card_charge = (payment.gateway, payment.reference)
            receipt.details.append(("Payment reference", payment.gateway_id or payment.reference))

    async def _late_funding(self, session: AsyncSession, receipt: Receipt, transaction: LedgerTransaction,
                            moved: dict[str, int], names: dict[str, str]) -> None:
        await self._funding(session, receipt, transaction, moved, names)
        receipt.note = ("The payment provider confirmed this charge after mercato had given it up, and "
                        "the milestone was paid another way: the amount is owed back to the client and "
                        "sits in their refunds balance.")

    async def _release(self, session: AsyncSession, receipt: Receipt, transaction: LedgerTransaction,
                       moved: dict[str, int], names: dict[str, str]) -> None:
        released = -moved.get(Purpose.ESCROW, 0)
        fee = int(transaction.reference.get("fee", 0))
        receipt.lines = [Line("Released from escrow", released), Line("Platform fee", fee, deducted=True),
                         Line("Net to the developer", released - fee, total=True)]
        receipt.details += [("Client", names.get("client", "")), ("Developer", names.get("developer", ""))]
        if released - fee:
            receipt.details.append(("Available for payout", await self._available(session, transaction)))

    async def _available(self, session: AsyncSession, release: LedgerTransaction) -> str:
        ended = await session.scalar(select(LedgerTransaction.created_at).where(
            LedgerTransaction.idempotency_key == f"hold:{release.idempotency_key}"))
        if ended is not None:
            return f"Since {format_moment(ended)}"
        due = await session.scalar(select(Timer.due_at).where(Timer.kind == HOLD_END,
                                                              Timer.ref == release.idempotency_key))
        return f"From {format_moment(due)}" if due else "After the payout hold"

    async def _hold_end(self, session: AsyncSession, receipt: Receipt, transaction: LedgerTransaction,
                        moved: dict[str, int], names: dict[str, str]) -> None:
        amount = moved.get(Purpose.DEVELOPER_AVAILABLE, 0)
        receipt.lines = [Line("Moved from pending to available", amount, total=True)]
        released = await session.scalar(select(LedgerTransaction.created_at).where(
            LedgerTransaction.idempotency_key == str(transaction.reference.get("release", ""))))
        if released is not None:
            receipt.details.append(("Released on", format_moment(released)))
        receipt.details.append(("Developer", names.get("developer", "")))

    async def _refund(self, session: AsyncSession, receipt: Receipt, transaction: LedgerTransaction,
                      moved: dict[str, int], names: dict[str, str]) -> None:
        refunded = -moved.get(Purpose.ESCROW, 0)
        fee = int(transaction.reference.get("fee", 0))
        receipt.lines = [Line("Milestone amount refunded", refunded), Line("Client fee refunded", fee),
                         Line("Total refunded", refunded + fee, total=True)]
        receipt.details.append(("Refunded to", names.get("client", "")))
        milestone = transaction.reference.get("milestone")
        refund = await session.scalar(
            select(Payment).where(Payment.kind == PaymentKind.REFUND,
                                  Payment.milestone_id == uuid.UUID(str(milestone)))
            .order_by(Payment.created_at.desc()).limit(1)
        ) if milestone else None
        if refund is None:
            receipt.details.append(("Where it is", "In the client's refunds balance"))
            return
        receipt.status = refund.status
        receipt.details.append(("Where it is", {
            PaymentStatus.PENDING: "On its way back to the card",
            PaymentStatus.SUCCEEDED: "Back on the card",
            PaymentStatus.FAILED: f"In the client's refunds balance: {refund.message}",
        }.get(PaymentStatus(refund.status), refund.status)))
        await self._card_of_refund(session, receipt, refund)

    async def _refund_paid(self, session: AsyncSession, receipt: Receipt, transaction: LedgerTransaction,
                           moved: dict[str, int], names: dict[str, str]) -> None:
        refund = await self._payment(session, transaction)
        amount = refund.amount if refund else moved.get(Purpose.GATEWAY_CLEARING, 0)
        receipt.lines = [Line("Refunded to the card", amount, total=True)]
        receipt.details.append(("Refunded to", names.get("client", "")))
        if refund is not None:
            receipt.status = refund.status
            receipt.details.append(("Refund reference", refund.gateway_id or refund.reference))
            await self._card_of_refund(session, receipt, refund)

    @staticmethod
    async def _card_of_refund(session: AsyncSession, receipt: Receipt, refund: Payment) -> None:
        charge = await session.get(Payment, refund.charge_id) if refund.charge_id else None
        if charge is not None:
            receipt.card_charge = (charge.gateway, charge.reference)

    async def _payout(self, session: AsyncSession, receipt: Receipt, transaction: LedgerTransaction,
                      moved: dict[str, int], names: dict[str, str]) -> None:
        payout = await self._payment(session, transaction)
        amount = -moved.get(Purpose.DEVELOPER_AVAILABLE, 0)
        receipt.lines = [Line("Paid out from your available balance", amount), Line("Fee", 0),
                         Line("Sent to you", amount, total=True)]
        destination = transaction.reference.get("destination") or "Not recorded"
        receipt.details.append(("Destination", str(destination)))
        if payout is not None:
            receipt.status = payout.status
            receipt.details.append(("Through", self._gateway_name(payout.gateway)))
            receipt.details.append(("Payout reference", payout.gateway_id or payout.reference))
            if payout.status == PaymentStatus.FAILED:
                receipt.note = (f"The payout failed: {payout.message} "
                                "The amount is back in your available balance.")
            elif payout.status == PaymentStatus.PENDING:
                receipt.note = "The payment provider has not confirmed this payout yet."

    async def _payout_reversal(self, session: AsyncSession, receipt: Receipt, transaction: LedgerTransaction,
                               moved: dict[str, int], names: dict[str, str]) -> None:
        payout = await self._payment(session, transaction)
        amount = moved.get(Purpose.DEVELOPER_AVAILABLE, 0)
        receipt.lines = [Line("Returned to your available balance", amount, total=True)]
        if payout is None:
            return
        receipt.status = payout.status
        original = await session.scalar(select(LedgerTransaction).where(
            LedgerTransaction.idempotency_key == f"payout:{payout.reference}"))
        if original is not None and original.reference.get("destination"):
            receipt.details.append(("Destination", str(original.reference["destination"])))
        receipt.details.append(("Why", payout.message))
        receipt.details.append(("Payout reference", payout.gateway_id or payout.reference))

    def _gateway_name(self, gateway_id: str) -> str:
        try:
            return self.site.gateways.get(gateway_id).name
        except UnknownGateway:
            return gateway_id

