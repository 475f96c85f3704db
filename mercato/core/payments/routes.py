"""Gateways tell mercato what became of a payment: ``POST /api/v1/payments/webhooks/{gateway}``.

The gateway verifies its own signature (:meth:`PaymentGateway.parse_webhook`); anything forged,
stale or garbled is answered 400 and logged with the sender's address. A genuine event is
recorded by its id and applied in one transaction, so a repeat of it (a gateway retrying a
delivery whose answer it missed) is recognised, logged and ignored with 200.
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import Annotated, Any

import structlog
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mercato.core.accounts.routes import require_principal
from mercato.core.contracts.milestones import MilestoneService
from mercato.core.errors import field_error
from mercato.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Limit
from mercato.core.payments.gateways import GatewayError, InvalidWebhook, PayoutRequest, UnknownGateway
from mercato.core.payments.idempotency import idempotent
from mercato.core.payments.models import Payment, PaymentKind, PaymentStatus, PaymentWebhook
from mercato.core.payments.refunds import Refunds
from mercato.core.payments.wallet import (
    PayoutIn,
    PayoutOut,
    TransactionPage,
    Wallet,
    WalletOut,
    payout_out,
)
from mercato.core.site import Site

log = structlog.get_logger("mercato.payments")

Currency = Annotated[str | None, QueryParameter(pattern=r"^[A-Z]{3}$", description="Only this currency")]
Kind = Annotated[str | None, QueryParameter(max_length=40, description="Only this kind (release, payout, …)")]


class PaymentsController(Controller):
    path = "/api/v1/payments"
    tags = ["payments"]

    @post("/webhooks/{gateway_id:str}", status_code=200, summary="A gateway's signed notification")
    async def webhook(self, request: Request[Any, Any, Any], gateway_id: FromPath[str],
                      site: NamedDependency[Site]) -> dict[str, str]:
        """For payment gateways, not people: the body and headers are the gateway's own."""
        try:
            gateway = site.gateways.get(gateway_id)
        except UnknownGateway:
            raise NotFoundException("No such payment gateway.") from None
        body = await request.body()
        try:
            event = gateway.parse_webhook(dict(request.headers), body)
        except InvalidWebhook as exc:
            log.warning("webhook refused", gateway=gateway_id, reason=str(exc),
                        sender=request.client.host if request.client else "")
            raise ClientException(f"Webhook refused: {exc}") from None
        async with site.db.transaction() as session:
            try:
                async with session.begin_nested():
                    session.add(PaymentWebhook(id=uuid.uuid4(), gateway=gateway_id, event_id=event.id,
                                               reference=event.reference))
            except IntegrityError:
                log.info("webhook repeated; ignored", gateway=gateway_id, event_id=event.id)
                return {"status": "duplicate"}
            if event.kind == PaymentKind.CHARGE:
                milestones = MilestoneService(site)
                await milestones.settle_charge(session, event.reference, event.outcome,
                                               gateway_ref=event.gateway_id, message=event.message)
            elif event.kind == PaymentKind.REFUND:
                await Refunds(site).settle(session, event.reference, event.outcome,
                                           gateway_ref=event.gateway_id, message=event.message)
            elif event.kind == PaymentKind.PAYOUT:
                await Wallet(site).settle_payout(session, event.reference, event.outcome,
                                                 gateway_ref=event.gateway_id, message=event.message)
        log.info("webhook applied", gateway=gateway_id, event_id=event.id, kind=event.kind,
                 reference=event.reference, outcome=str(event.outcome))
        return {"status": "ok"}


class WalletController(Controller):
    """Your own money only: there is no way to ask for anyone else's."""

    path = "/api/v1/wallet"
    tags = ["wallet"]

    @get("/", summary="Your balances by currency")
    async def wallet(self, request: Request[Any, Any, Any], site: NamedDependency[Site]) -> WalletOut:
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await Wallet(site).balances(session, principal.user_id)

    @get("/transactions", summary="The movements of your balances, newest first")
    async def transactions(
        self, request: Request[Any, Any, Any], site: NamedDependency[Site], limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None, currency: Currency = None, kind: Kind = None,
    ) -> TransactionPage:
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await Wallet(site).transactions(session, principal.user_id, limit=limit, cursor=cursor,
                                                   currency=currency, kind=kind)

    @get("/transactions.csv", summary="The same, as a CSV file (every row)", media_type="text/csv")
    async def transactions_csv(self, request: Request[Any, Any, Any], site: NamedDependency[Site],
                               currency: Currency = None, kind: Kind = None) -> Response[str]:
        principal = require_principal(request)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["transaction_id", "created_at", "kind", "balance", "amount_minor", "currency",
                         "contract_id", "milestone_id", "payment_id"])
        cursor: str | None = None
        wallet = Wallet(site)
        while True:
            async with site.db.reading() as session:
                page = await wallet.transactions(session, principal.user_id, limit=MAX_LIMIT, cursor=cursor,
                                                 currency=currency, kind=kind)
            for item in page.items:
                for entry in item.entries:
                    writer.writerow([item.id, item.created_at.isoformat(), item.kind, entry.purpose,
                                     entry.amount, entry.currency, item.contract_id or "",
                                     item.milestone_id or "", item.payment_id or ""])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return Response(out.getvalue(), media_type="text/csv", headers={
            "content-disposition": 'attachment; filename="transactions.csv"'})

    @post("/payouts", status_code=200, middleware=[idempotent], summary="Pay your available balance out",
          responses={402: ResponseSpec(None, description="The gateway refused the payout")})
    async def payout(self, request: Request[Any, Any, Any], data: JSONBody[PayoutIn],
                     site: NamedDependency[Site]) -> PayoutOut:
        """Takes the amount off your available balance at once (409 when it is short); a payout
        the gateway refuses gives it back and is a 402. ``pending`` until the gateway confirms."""
        principal = require_principal(request)
        try:
            gateway = site.gateways.get(data.gateway or site.settings.payments.default_gateway)
        except UnknownGateway as exc:
            raise field_error("gateway", str(exc)) from None
        if data.currency not in gateway.currencies:
            raise field_error("currency", f"{gateway.name} does not pay out in {data.currency}.")
        wallet = Wallet(site)
        async with site.db.transaction() as session:
            payment = await wallet.begin_payout(session, principal.user_id, data, gateway.id)
            reference = payment.reference
        try:
            result = await gateway.payout(PayoutRequest(reference=reference, amount=data.amount,
                                                        currency=data.currency, destination=data.destination))
        except GatewayError as exc:
            log.warning("payout outcome unknown", gateway=gateway.id, reference=reference, error=repr(exc))
        else:
            async with site.db.transaction() as session:
                payment = await wallet.settle_payout(session, reference, result.outcome,  # type: ignore[assignment]
                                                     gateway_ref=result.gateway_id, message=result.message)
            if payment.status == PaymentStatus.FAILED:
                raise PaymentRefused(payment.message)
        async with site.db.reading() as session:
            found = await session.scalar(select(Payment).where(Payment.reference == reference))
            assert found is not None
            return payout_out(found)


class PaymentRefused(ClientException):
    status_code = 402
