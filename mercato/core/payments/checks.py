"""Asking a gateway about an operation that has had no answer (a timer's work)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mercato.core.db import utcnow
from mercato.core.payments.gateways import Outcome
from mercato.core.payments.models import Payment, PaymentStatus
from mercato.core.timers import schedule

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site
    from mercato.core.timers.models import Timer

CHECK_MINUTES = 10
"""An operation still pending this long after it was asked for is looked up at its gateway."""

Settle = Callable[..., Awaitable[Any]]
Unknown = Callable[["AsyncSession", Payment], Awaitable[None]]


async def schedule_check(session: AsyncSession, kind: str, reference: str) -> None:
    await schedule(session, kind, reference, utcnow() + timedelta(minutes=CHECK_MINUTES))


async def ask_gateway(site: Site, session: AsyncSession, timer: Timer, operation: str,
                      settle: Settle, *, unknown: Unknown | None = None) -> None:
    """Settle the pending payment ``timer.ref`` from what its gateway says now: one the gateway
    never heard of failed (or, with ``unknown``, is handed to it: money mercato owes is never
    given up); one still pending is asked about again later."""
    payment = await session.scalar(select(Payment).where(Payment.reference == timer.ref))
    if payment is None or payment.status != PaymentStatus.PENDING:
        return
    result = await site.gateways.get(payment.gateway).retrieve(operation, payment.reference)
    if result is None and unknown is not None:
        await unknown(session, payment)
        await schedule_check(session, timer.kind, payment.reference)
    elif result is None:
        await settle(session, payment.reference, Outcome.FAILED,
                     message=f"The {operation} did not reach the payment provider.")
    elif result.outcome == Outcome.PENDING:
        await schedule_check(session, timer.kind, payment.reference)
    else:
        await settle(session, payment.reference, result.outcome, gateway_ref=result.gateway_id,
                     message=result.message)
