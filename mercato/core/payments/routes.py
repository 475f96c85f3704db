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
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.exc import IntegrityError

from mercato.core.accounts.routes import require_principal
from mercato.core.contracts.milestones import MilestoneService
from mercato.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Limit
from mercato.core.payments.gateways import InvalidWebhook, UnknownGateway
from mercato.core.payments.idempotency import idempotent
from mercato.core.payments.models import PaymentKind, PaymentStatus, PaymentWebhook
from mercato.core.payments.payout_methods import (
    PayoutMethodIn,
    PayoutMethodOut,
    PayoutMethodPage,
    PayoutMethods,
    method_out,
)
from mercato.core.payments.refunds import Refunds
from mercato.core.payments.wallet import PayoutIn, PayoutOut, TransactionPage, Wallet, WalletOut
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
                         "contract_id", "milestone_id", "payment_id", "description"])
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
                                     item.milestone_id or "", item.payment_id or "", item.description])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return Response(out.getvalue(), media_type="text/csv", headers={
            "content-disposition": 'attachment; filename="transactions.csv"'})

    @post("/payouts", status_code=200, middleware=[idempotent], summary="Pay your available balance out",
          responses={402: ResponseSpec(None, description="The gateway refused the payout")})
    async def payout(self, request: Request[Any, Any, Any], data: JSONBody[PayoutIn],
                     site: NamedDependency[Site]) -> PayoutOut:
        """Pays to one of your payout methods (404 for anyone else's). Takes the amount off your
        available balance at once (409 when it is short); a payout the gateway refuses gives it
        back and is a 402. ``pending`` until the gateway confirms."""
        principal = require_principal(request)
        wallet = Wallet(site)
        payment = await wallet.pay_out(principal.user_id, data)
        if payment.status == PaymentStatus.FAILED:
            raise PaymentRefused(payment.message)
        async with site.db.reading() as session:
            return await wallet.payout_out(session, payment)

    @get("/payout-methods", summary="Your payout methods, newest first")
    async def payout_methods(self, request: Request[Any, Any, Any], site: NamedDependency[Site],
                             limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> PayoutMethodPage:
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await PayoutMethods(site).page(session, principal.user_id, limit=limit, cursor=cursor)

    @post("/payout-methods", status_code=201, middleware=[idempotent], summary="Add a payout method")
    async def add_payout_method(self, request: Request[Any, Any, Any], data: JSONBody[PayoutMethodIn],
                                site: NamedDependency[Site]) -> PayoutMethodOut:
        """Registers the bank account with the gateway, which keeps the number; the answer has
        only a label safe to show. 400 naming the field the gateway refuses (the sandbox takes
        only its test accounts, ``000123456789`` and ``000111111116``)."""
        principal = require_principal(request)
        return method_out(await PayoutMethods(site).add(principal.user_id, data))

    @delete("/payout-methods/{payout_method_id:uuid}", status_code=204, summary="Remove a payout method")
    async def remove_payout_method(self, request: Request[Any, Any, Any], site: NamedDependency[Site],
                                   payout_method_id: FromPath[uuid.UUID]) -> None:
        """Payouts already made to it are not affected. 404 for anyone else's."""
        principal = require_principal(request)
        await PayoutMethods(site).remove(principal.user_id, payout_method_id)


class PaymentRefused(ClientException):
    status_code = 402
