"""Refunds to the client's payment method.

Cancelling a funded milestone moves its escrow to the client's refund balance
(``client_funding``) in the cancelling transaction, and records a pending refund of the charge
that funded it. After commit the gateway is asked to refund; when it confirms (at once, by
webhook, or when a timer asks it), the money leaves the refund balance for the gateway. A
refund the gateway refuses leaves the money in the client's refund balance, logged, for an
operator: it is never lost.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, ClassVar

import structlog
from sqlalchemy import select

from mercato.core.db import utcnow
from mercato.core.events import Event, EventPayload, emit
from mercato.core.ledger.models import Purpose
from mercato.core.ledger.services import Account, Ledger, Leg
from mercato.core.payments.checks import ask_gateway, schedule_check
from mercato.core.payments.gateways import GatewayError, Outcome, RefundRequest
from mercato.core.payments.models import Payment, PaymentKind, PaymentStatus
from mercato.core.timers import TimerHandler, schedule

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site
    from mercato.core.timers.models import Timer

log = structlog.get_logger("mercato.payments")

REFUND_CHECK = "payment.refund_check"
REFUND_SEND = "payment.refund_send"


class PaymentRefunded(EventPayload, frozen=True):
    event_type: ClassVar[str] = "payment.refunded"
    refund_id: uuid.UUID
    client_id: uuid.UUID
    contract_id: uuid.UUID | None
    milestone_id: uuid.UUID | None
    amount: int
    currency: str


class Refunds:
    def __init__(self, site: Site) -> None:
        self.site = site

    async def begin(self, session: AsyncSession, *, client_id: uuid.UUID, contract_id: uuid.UUID,
                    milestone_id: uuid.UUID, amount: int, currency: str) -> Payment | None:
        """Record a pending refund of the charge that funded ``milestone_id`` (None when there is
        no such charge: the money then stays in the client's refund balance)."""
        charge = await session.scalar(
            select(Payment).where(Payment.milestone_id == milestone_id, Payment.kind == PaymentKind.CHARGE,
                                  Payment.status == PaymentStatus.SUCCEEDED)
            .order_by(Payment.created_at.desc()).limit(1)
        )
        if charge is None:
            log.warning("no charge to refund; the money stays in the client's refund balance",
                        milestone=str(milestone_id), amount=amount)
            return None
        refund = Payment(
            id=uuid.uuid4(), reference=f"re_{uuid.uuid4().hex}", kind=PaymentKind.REFUND,
            gateway=charge.gateway, status=PaymentStatus.PENDING, amount=amount, fee=0, currency=currency,
            user_id=client_id, contract_id=contract_id, milestone_id=milestone_id, charge_id=charge.id,
        )
        session.add(refund)
        await schedule_check(session, REFUND_CHECK, refund.reference)
        # Sent by the sweeper once committed, even if the process that began it dies first; the
        # caller may send it sooner itself (the gateway answers a second ask with the same refund).
        await schedule(session, REFUND_SEND, refund.reference, utcnow())
        return refund

    async def send(self, reference: str) -> None:
        """Ask the gateway to refund (after the cancelling transaction committed)."""
        async with self.site.db.reading() as session:
            refund = await session.scalar(select(Payment).where(Payment.reference == reference))
            charge = await session.get(Payment, refund.charge_id) if refund and refund.charge_id else None
            if refund is None or charge is None or refund.status != PaymentStatus.PENDING:
                return
            request = RefundRequest(reference=reference, charge_id=charge.gateway_id, amount=refund.amount,
                                    currency=refund.currency)
            gateway_id = refund.gateway
        try:
            result = await self.site.gateways.get(gateway_id).refund(request)
        except GatewayError as exc:  # settled later: by webhook, or by the check
            log.warning("refund outcome unknown", gateway=gateway_id, reference=reference, error=repr(exc))
            return
        async with self.site.db.transaction() as session:
            await self.settle(session, reference, result.outcome, gateway_ref=result.gateway_id,
                              message=result.message)

    async def settle(self, session: AsyncSession, reference: str, outcome: Outcome, *, gateway_ref: str = "",
                     message: str = "") -> Payment | None:
        """Apply a gateway's answer about a refund, once."""
        refund = await session.scalar(
            select(Payment).where(Payment.reference == reference, Payment.kind == PaymentKind.REFUND)
            .with_for_update().execution_options(populate_existing=True)
        )
        if refund is None or refund.status != PaymentStatus.PENDING or outcome == Outcome.PENDING:
            return refund
        refund.gateway_id = gateway_ref or refund.gateway_id
        if outcome == Outcome.FAILED:
            refund.status = PaymentStatus.FAILED
            refund.message = message[:300] or "The refund failed."
            log.warning("refund failed; the money stays in the client's refund balance",
                        reference=reference, amount=refund.amount, message=refund.message)
            return refund
        refund.status = PaymentStatus.SUCCEEDED
        await Ledger().post(session, key=f"refund-paid:{reference}", kind="refund_paid", legs=[
            Leg(Account.user(refund.user_id, Purpose.CLIENT_FUNDING, refund.currency), -refund.amount),
            Leg(Account.gateway(refund.gateway, refund.currency, by=refund.contract_id), refund.amount),
        ], reference={"payment": str(refund.id), "contract": str(refund.contract_id),
                      "milestone": str(refund.milestone_id)})
        emit(session, Event.of(PaymentRefunded(
            refund_id=refund.id, client_id=refund.user_id, contract_id=refund.contract_id,
            milestone_id=refund.milestone_id, amount=refund.amount, currency=refund.currency,
        )))
        return refund

    async def _check(self, session: AsyncSession, timer: Timer) -> None:
        """A refund with no answer yet. One its gateway never heard of was never sent (the
        process died first, or the send is still on its way): it is sent (again), never given up,
        since the money is the client's."""
        await ask_gateway(self.site, session, timer, "refund", self.settle, unknown=self._resend)

    @staticmethod
    async def _resend(session: AsyncSession, refund: Payment) -> None:
        await schedule(session, REFUND_SEND, refund.reference, utcnow())

    async def _send(self, _session: None, timer: Timer) -> None:
        await self.send(timer.ref)

    def timer_handlers(self) -> list[TimerHandler]:
        return [TimerHandler(REFUND_CHECK, self._check),
                TimerHandler(REFUND_SEND, self._send, transactional=False)]
