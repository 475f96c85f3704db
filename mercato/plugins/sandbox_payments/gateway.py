"""The sandbox gateway: a payment processor that moves no real money but behaves like one.

It keeps its own state (``sandbox_operations``), answers a repeated reference with the first
answer, and decides a charge by the card number, as processors' test modes do:

================== ===========================================
4242 4242 4242 4242 succeeds
4000 0000 0000 0002 is declined ("Your card was declined.")
4000 0000 0000 9995 is declined for insufficient funds
================== ===========================================

Any other number is refused with a message listing these. Refunds and payouts succeed.
Webhooks are signed like Stripe's: the header ``Sandbox-Signature: t=<unix time>,v1=<hex>``
carries an HMAC-SHA256 of ``"<t>.<body>"`` under the site's secret; :meth:`parse_webhook`
refuses a wrong signature, a timestamp outside :data:`TOLERANCE_SECONDS`, or a malformed body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mercato.core.payments.gateways import (
    Capability,
    ChargeRequest,
    GatewayResult,
    InvalidWebhook,
    Outcome,
    PayoutRequest,
    RefundRequest,
    WebhookEvent,
)

from .models import SandboxOperation

if TYPE_CHECKING:
    from mercato.core.site import Site

GATEWAY_ID = "sandbox"
SIGNATURE_HEADER = "sandbox-signature"
TOLERANCE_SECONDS = 300
CARDS: dict[str, tuple[Outcome, str]] = {
    "4242424242424242": (Outcome.SUCCEEDED, ""),
    "4000000000000002": (Outcome.FAILED, "Your card was declined."),
    "4000000000009995": (Outcome.FAILED, "Your card has insufficient funds."),
}
UNKNOWN_CARD = ("This is the sandbox: pay with a test card, 4242 4242 4242 4242 (succeeds), "
                "4000 0000 0000 0002 (declined) or 4000 0000 0000 9995 (insufficient funds).")


class _Webhook(msgspec.Struct):
    id: str
    kind: str
    reference: str
    gateway_id: str
    outcome: Outcome
    message: str = ""


class SandboxGateway:
    id = GATEWAY_ID
    name = "Sandbox (test cards)"
    capabilities = frozenset({Capability.CHARGE, Capability.REFUND, Capability.PAYOUT, Capability.WEBHOOKS})
    currencies = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY", "INR", "BRL", "PLN", "SEK"})

    def __init__(self, site: Site) -> None:
        self.site = site

    @property
    def secret(self) -> bytes:
        return hashlib.sha256(b"sandbox-webhooks:" + self.site.settings.secret_key().encode()).digest()

    async def _record(self, reference: str, kind: str, amount: int, currency: str, outcome: Outcome,
                      message: str = "", card_last4: str = "") -> GatewayResult:
        """Store the operation, or return the one stored before under ``reference``."""
        if (known := await self.retrieve(kind, reference)) is not None:
            return known
        operation_id = uuid.uuid4()
        try:
            async with self.site.db.transaction() as session:
                session.add(SandboxOperation(
                    id=operation_id, reference=reference, kind=kind, amount=amount, currency=currency,
                    status=outcome, message=message, card_last4=card_last4,
                ))
        except IntegrityError:  # the same reference, stored meanwhile by a concurrent request
            known = await self.retrieve(kind, reference)
            if known is None:
                raise
            return known
        return GatewayResult(outcome, f"sb_{kind}_{operation_id.hex}", message)

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        card = re.sub(r"[\s-]", "", request.payment_method)
        outcome, message = CARDS.get(card, (Outcome.FAILED, UNKNOWN_CARD))
        return await self._record(request.reference, "charge", request.amount, request.currency, outcome,
                                  message, card[-4:] if card.isdigit() else "")

    async def refund(self, request: RefundRequest) -> GatewayResult:
        return await self._record(request.reference, "refund", request.amount, request.currency,
                                  Outcome.SUCCEEDED)

    async def payout(self, request: PayoutRequest) -> GatewayResult:
        return await self._record(request.reference, "payout", request.amount, request.currency,
                                  Outcome.SUCCEEDED)

    async def retrieve(self, kind: str, reference: str) -> GatewayResult | None:
        async with self.site.db.reading() as session:
            row = (await session.execute(
                select(SandboxOperation.id, SandboxOperation.status, SandboxOperation.message)
                .where(SandboxOperation.reference == reference, SandboxOperation.kind == kind)
            )).first()
        if row is None:
            return None
        return GatewayResult(Outcome(row.status), f"sb_{kind}_{row.id.hex}", row.message)

    # -- webhooks ------------------------------------------------------------------------
    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        """The ``Sandbox-Signature`` header for ``body``."""
        moment = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(self.secret, f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={moment},v1={digest}"

    def webhook_body(self, event: WebhookEvent) -> bytes:
        return msgspec.json.encode(_Webhook(event.id, event.kind, event.reference, event.gateway_id,
                                            event.outcome, event.message))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        header = next((value for name, value in headers.items() if name.lower() == SIGNATURE_HEADER), "")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(parts["t"])
            signature = parts["v1"]
        except (KeyError, ValueError):
            raise InvalidWebhook("missing or malformed Sandbox-Signature header") from None
        if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
            raise InvalidWebhook("the signature's timestamp is outside the tolerance (a replay?)")
        expected = hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise InvalidWebhook("the signature does not match")
        try:
            data = msgspec.json.decode(body, type=_Webhook)
        except msgspec.ValidationError as exc:
            raise InvalidWebhook(f"malformed body: {exc}") from None
        return WebhookEvent(data.id, data.kind, data.reference, data.gateway_id, data.outcome, data.message)
