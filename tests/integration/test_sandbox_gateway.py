"""The sandbox gateway on its own: decisions by test card, one answer per reference, and
webhook signatures that refuse forgeries, replays and garbage."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mercato.core.payments.gateways import ChargeRequest, InvalidWebhook, Outcome, WebhookEvent
from mercato.core.site import Site
from mercato.plugins.sandbox_payments.gateway import SandboxGateway


@pytest.fixture
async def gateway(migrated_settings: Any) -> AsyncIterator[SandboxGateway]:
    site = Site(migrated_settings)
    gateway = site.gateways.get("sandbox")
    assert isinstance(gateway, SandboxGateway)
    yield gateway
    await site.db.dispose()


def charge(reference: str, card: str, amount: int = 1_000) -> ChargeRequest:
    return ChargeRequest(reference=reference, amount=amount, currency="USD", payment_method=card)


async def test_test_cards_decide_and_a_reference_is_answered_once(gateway: SandboxGateway) -> None:
    ok = await gateway.charge(charge("r1", "4242-4242-4242-4242"))
    assert ok.outcome == Outcome.SUCCEEDED
    assert ok.gateway_id.startswith("sb_charge_")
    declined = await gateway.charge(charge("r2", "4000000000000002"))
    assert (declined.outcome, declined.message) == (Outcome.FAILED, "Your card was declined.")
    broke = await gateway.charge(charge("r3", "4000 0000 0000 9995"))
    assert "insufficient funds" in broke.message
    unknown = await gateway.charge(charge("r4", "5555"))
    assert unknown.outcome == Outcome.FAILED
    assert "4242 4242 4242 4242" in unknown.message

    again = await gateway.charge(charge("r2", "4242424242424242", amount=5))  # same reference
    assert again == declined
    assert await gateway.retrieve("charge", "r1") == ok
    assert await gateway.retrieve("charge", "nope") is None


def event() -> WebhookEvent:
    return WebhookEvent(id="evt_1", kind="charge", reference="r1", gateway_id="sb_1",
                        outcome=Outcome.SUCCEEDED)


async def test_a_signed_webhook_is_read(gateway: SandboxGateway) -> None:
    body = gateway.webhook_body(event())
    assert gateway.parse_webhook({"Sandbox-Signature": gateway.sign(body)}, body) == event()


@pytest.mark.parametrize("tamper", ["body", "signature", "stale", "future", "missing", "garbled", "shape"])
async def test_forged_replayed_or_garbled_webhooks_are_refused(gateway: SandboxGateway, tamper: str) -> None:
    body = gateway.webhook_body(event())
    headers = {"Sandbox-Signature": gateway.sign(body)}
    if tamper == "body":
        body = body.replace(b"succeeded", b"failed")
    elif tamper == "signature":
        headers["Sandbox-Signature"] = headers["Sandbox-Signature"][:-4] + "0000"
    elif tamper == "stale":
        headers["Sandbox-Signature"] = gateway.sign(body, int(time.time()) - 3600)
    elif tamper == "future":
        headers["Sandbox-Signature"] = gateway.sign(body, int(time.time()) + 3600)
    elif tamper == "missing":
        headers = {}
    elif tamper == "garbled":
        headers["Sandbox-Signature"] = "t=abc,v1"
    elif tamper == "shape":
        body = b'{"id": 1}'
        headers["Sandbox-Signature"] = gateway.sign(body)
    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(headers, body)
