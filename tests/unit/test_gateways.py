"""Dispatching to payment gateways by id."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from mercato.core.payments.gateways import (
    Capability,
    ChargeRequest,
    GatewayResult,
    Gateways,
    Outcome,
    PayoutMethodRequest,
    PayoutMethodResult,
    PayoutRequest,
    RefundRequest,
    UnknownGateway,
    WebhookEvent,
)


class Gateway:
    capabilities = frozenset({Capability.CHARGE})
    currencies = frozenset({"USD"})

    def __init__(self, gateway_id: str) -> None:
        self.id = gateway_id
        self.name = gateway_id.title()

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        return GatewayResult(Outcome.SUCCEEDED, f"ch_{request.reference}")

    async def refund(self, request: RefundRequest) -> GatewayResult:
        raise NotImplementedError

    async def payout(self, request: PayoutRequest) -> GatewayResult:
        raise NotImplementedError

    async def add_payout_method(self, request: PayoutMethodRequest) -> PayoutMethodResult:
        raise NotImplementedError

    async def retrieve(self, kind: str, reference: str) -> GatewayResult | None:
        return None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        raise NotImplementedError


def test_gateways_are_found_by_id() -> None:
    one, two = Gateway("one"), Gateway("two")
    gateways = Gateways([one, two])
    assert gateways.get("two") is two
    assert "one" in gateways
    assert list(gateways) == [one, two]
    with pytest.raises(UnknownGateway, match=r"no payment gateway 'three' \(installed: one, two\)"):
        gateways.get("three")
    with pytest.raises(UnknownGateway, match=r"installed: none"):
        Gateways([]).get("sandbox")


def test_two_gateways_with_one_id_or_a_non_gateway_are_refused() -> None:
    with pytest.raises(ValueError, match="two plugins register the payment gateway 'one'"):
        Gateways([Gateway("one"), Gateway("one")])
    with pytest.raises(TypeError, match="PaymentGateway protocol"):
        Gateways([object()])  # type: ignore[list-item]
