"""Gateways tell mercato what became of a payment: ``POST /api/v1/payments/webhooks/{gateway}``.

The gateway verifies its own signature (:meth:`PaymentGateway.parse_webhook`); anything forged,
stale or garbled is answered 400 and logged with the sender's address. A genuine event is
recorded by its id and applied in one transaction, so a repeat of it (a gateway retrying a
delivery whose answer it missed) is recognised, logged and ignored with 200.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath
from sqlalchemy.exc import IntegrityError

from mercato.core.contracts.milestones import MilestoneService
from mercato.core.payments.gateways import InvalidWebhook, UnknownGateway
from mercato.core.payments.models import PaymentKind, PaymentWebhook
from mercato.core.site import Site

log = structlog.get_logger("mercato.payments")


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
        log.info("webhook applied", gateway=gateway_id, event_id=event.id, kind=event.kind,
                 reference=event.reference, outcome=str(event.outcome))
        return {"status": "ok"}
