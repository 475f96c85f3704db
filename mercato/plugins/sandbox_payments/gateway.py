"""The sandbox gateway: a payment processor that moves no real money but behaves like one.

It keeps its own state (``sandbox_operations``, ``sandbox_payout_accounts``), answers a repeated
reference with the first answer, and decides a charge by the card number, as processors' test
modes do:

=================== ======================================================
4242 4242 4242 4242 succeeds
4000 0000 0000 0002 is declined ("Your card was declined.")
4000 0000 0000 9995 is declined for insufficient funds
4000 0000 0000 3220 is pending, then succeeds by webhook moments later
4000 0000 0000 0341 is pending, then fails by webhook moments later
=================== ======================================================

Any other number is refused with a message listing these. Refunds succeed.

Payouts go to a bank account registered first (:meth:`SandboxGateway.add_payout_method`),
which the sandbox keeps in ``sandbox_payout_accounts`` and names by a token. Only the test
accounts are accepted: payouts to ``000123456789`` succeed and to ``000111111116`` fail.

Like a real processor it sends a webhook for **every** operation, immediate or not, so a
site that crashed before recording an answer still learns it. Deliveries are timers
(``sandbox.webhook``) stored with the operation, sent after ``confirm_delay_seconds`` to
``webhook_url`` (by default the site's ``base_url`` + ``/api/v1/payments/webhooks/sandbox``),
and retried with back-off until the site answers 2xx. They are signed like Stripe's: the
header ``Sandbox-Signature: t=<unix time>,v1=<hex>`` carries an HMAC-SHA256 of ``"<t>.<body>"``
under a key derived from the site's secret; :meth:`parse_webhook` refuses a wrong signature,
a timestamp outside :data:`TOLERANCE_SECONDS`, or a malformed body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import httpx2
import msgspec
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mercato.core.db import utcnow
from mercato.core.payments.gateways import (
    Capability,
    ChargeRequest,
    GatewayResult,
    InvalidPayoutMethod,
    InvalidWebhook,
    Outcome,
    PayoutMethodRequest,
    PayoutMethodResult,
    PayoutRequest,
    RefundRequest,
    WebhookEvent,
)
from mercato.core.timers import schedule

from .models import SandboxOperation, SandboxPayoutAccount

if TYPE_CHECKING:
    from mercato.core.site import Site
    from mercato.core.timers.models import Timer

PLUGIN_ID = "sandbox_payments"
GATEWAY_ID = "sandbox"
DELIVERY_TIMEOUT = 10.0
SIGNATURE_HEADER = "sandbox-signature"
TOLERANCE_SECONDS = 300
WEBHOOK_TIMER = "sandbox.webhook"
CARDS: dict[str, tuple[Outcome, Outcome, str]] = {
    # card: (the answer now, the final outcome its webhook reports, the message)
    "4242424242424242": (Outcome.SUCCEEDED, Outcome.SUCCEEDED, ""),
    "4000000000000002": (Outcome.FAILED, Outcome.FAILED, "Your card was declined."),
    "4000000000009995": (Outcome.FAILED, Outcome.FAILED, "Your card has insufficient funds."),
    "4000000000003220": (Outcome.PENDING, Outcome.SUCCEEDED, ""),
    "4000000000000341": (Outcome.PENDING, Outcome.FAILED, "Your card was declined after authorisation."),
}
UNKNOWN_CARD = ("This is the sandbox: pay with a test card, 4242 4242 4242 4242 (succeeds), "
                "4000 0000 0000 0002 (declined) or 4000 0000 0000 9995 (insufficient funds).")

ACCOUNTS: dict[str, tuple[Outcome, str]] = {
    "000123456789": (Outcome.SUCCEEDED, ""),
    "000111111116": (Outcome.FAILED, "The bank refused the transfer: no such account."),
}
UNKNOWN_ACCOUNT = ("This is the sandbox: add a test account, 000123456789 (payouts succeed) or "
                   "000111111116 (payouts fail).")
UNKNOWN_TOKEN = "No such payout method at the sandbox: add one first."
ACCOUNT_NUMBER = re.compile(r"\d{6,17}")
"""What a bank account number looks like here (US account numbers are up to 17 digits)."""


class SandboxSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.sandbox_payments]``."""

    webhook_url: str = ""
    """Where webhooks go; empty: ``[site] base_url`` + ``/api/v1/payments/webhooks/sandbox``."""
    confirm_delay_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 2.0
    """How long a pending card waits before its webhook reports the outcome."""


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

    @property
    def settings(self) -> SandboxSettings:
        found = self.site.plugin_settings(PLUGIN_ID)
        return found if isinstance(found, SandboxSettings) else SandboxSettings()

    @property
    def webhook_url(self) -> str:
        return self.settings.webhook_url or (
            self.site.settings.site.base_url.rstrip("/") + f"/api/v1/payments/webhooks/{GATEWAY_ID}"
        )

    async def _record(self, reference: str, kind: str, amount: int, currency: str, outcome: Outcome,
                      message: str = "", card_last4: str = "", final: Outcome | None = None) -> GatewayResult:
        """Store the operation, or return the one stored before under ``reference``."""
        if (known := await self.retrieve(kind, reference)) is not None:
            return known
        operation_id = uuid.uuid4()
        gateway_id = f"sb_{kind}_{operation_id.hex}"
        final = final or outcome
        delay = self.settings.confirm_delay_seconds if outcome == Outcome.PENDING else 0.0
        try:
            async with self.site.db.transaction() as session:
                session.add(SandboxOperation(
                    id=operation_id, reference=reference, kind=kind, amount=amount, currency=currency,
                    status=outcome, message=message if outcome != Outcome.PENDING else "",
                    card_last4=card_last4,
                ))
                event = {"id": f"evt_{uuid.uuid4().hex}", "kind": kind, "reference": reference,
                         "gateway_id": gateway_id, "outcome": str(final), "message": message}
                await schedule(session, WEBHOOK_TIMER, reference, utcnow() + timedelta(seconds=delay), event)
        except IntegrityError:  # the same reference, stored meanwhile by a concurrent request
            known = await self.retrieve(kind, reference)
            if known is None:
                raise
            return known
        return GatewayResult(outcome, gateway_id, message if outcome != Outcome.PENDING else "", card_last4)

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        card = re.sub(r"[\s-]", "", request.payment_method)
        now, final, message = CARDS.get(card, (Outcome.FAILED, Outcome.FAILED, UNKNOWN_CARD))
        return await self._record(request.reference, "charge", request.amount, request.currency, now,
                                  message, card[-4:] if card.isdigit() else "", final)

    async def refund(self, request: RefundRequest) -> GatewayResult:
        return await self._record(request.reference, "refund", request.amount, request.currency,
                                  Outcome.SUCCEEDED)

    async def payout(self, request: PayoutRequest) -> GatewayResult:
        async with self.site.db.reading() as session:
            number = await session.scalar(select(SandboxPayoutAccount.account_number)
                                          .where(SandboxPayoutAccount.token == request.destination))
        outcome, message = (Outcome.FAILED, UNKNOWN_TOKEN) if number is None else ACCOUNTS[number]
        return await self._record(request.reference, "payout", request.amount, request.currency, outcome,
                                  message)

    async def add_payout_method(self, request: PayoutMethodRequest) -> PayoutMethodResult:
        """Keep a test bank account and answer its token; any other number is refused, naming
        the test accounts (as a real processor refuses a number that fails its checks)."""
        number = re.sub(r"[\s-]", "", request.account_number)
        if not ACCOUNT_NUMBER.fullmatch(number):
            raise InvalidPayoutMethod("account_number", "Enter the account number: 6 to 17 digits.")
        if number not in ACCOUNTS:
            raise InvalidPayoutMethod("account_number", UNKNOWN_ACCOUNT)
        account = SandboxPayoutAccount(id=uuid.uuid4(), token=f"sb_acct_{uuid.uuid4().hex}",
                                       reference=request.reference, owner=request.owner,
                                       account_number=number)
        try:
            async with self.site.db.transaction() as session:
                session.add(account)
        except IntegrityError:  # the same reference, registered before: the same account
            async with self.site.db.reading() as session:
                known = await session.scalar(select(SandboxPayoutAccount)
                                             .where(SandboxPayoutAccount.reference == request.reference))
            if known is None:
                raise
            account = known
        label = f"Bank account \u2022\u2022{account.account_number[-4:]}"
        return PayoutMethodResult(token=account.token, label=label)

    async def retrieve(self, kind: str, reference: str) -> GatewayResult | None:
        async with self.site.db.reading() as session:
            row = (await session.execute(
                select(SandboxOperation.id, SandboxOperation.status, SandboxOperation.message,
                       SandboxOperation.card_last4)
                .where(SandboxOperation.reference == reference, SandboxOperation.kind == kind)
            )).first()
        if row is None:
            return None
        return GatewayResult(Outcome(row.status), f"sb_{kind}_{row.id.hex}", row.message, row.card_last4)

    # -- webhooks ------------------------------------------------------------------------
    async def deliver(self, _session: None, timer: Timer) -> None:
        """Settle the operation as its webhook reports, then send the webhook. A timer handler
        run outside a transaction (the site's own endpoint, which may answer this webhook, needs
        the database); a failed delivery raises, and the timer retries with back-off."""
        event = WebhookEvent(**{**timer.data, "outcome": Outcome(timer.data["outcome"])})
        async with self.site.db.transaction() as session:
            await session.execute(
                update(SandboxOperation)
                .where(SandboxOperation.reference == event.reference,
                       SandboxOperation.status == Outcome.PENDING)
                .values(status=event.outcome, message=event.message)
            )
        body = self.webhook_body(event)
        async with httpx2.AsyncClient(timeout=DELIVERY_TIMEOUT) as http:
            response = await http.post(self.webhook_url, content=body, headers={
                "content-type": "application/json", "Sandbox-Signature": self.sign(body),
            })
        if response.status_code >= 300:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")

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
