"""Plugins that bring payment gateways and fee policies: what a site ends up using."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mercato import hookimpl
from mercato.core.payments.fees import FeeContext, PercentageFees
from mercato.core.plugins import build_plugin_manager
from mercato.core.site import Site
from tests.unit.test_gateways import Gateway


class FlatFees:
    def release_fee(self, context: FeeContext) -> int:
        return min(500, context.amount)

    def client_fee(self, context: FeeContext) -> int:
        return 0


class PaymentsPlugin:
    def __init__(self, *gateway_ids: str) -> None:
        self.gateway_ids = gateway_ids

    @hookimpl
    def register_payment_gateways(self, site: Site) -> list[Any]:
        return [Gateway(gateway_id) for gateway_id in self.gateway_ids]

    @hookimpl
    def get_fee_policy(self, site: Site) -> FlatFees:
        return FlatFees()


def site_with(make_settings: Any, *plugins: object, **overrides: Any) -> Site:
    settings = make_settings(**overrides)
    extra = [(f"payments_plugin_{n}", plugin) for n, plugin in enumerate(plugins)]
    return Site(settings, pm=build_plugin_manager(settings, extra=extra))


def context(amount: int) -> FeeContext:
    return FeeContext(amount=amount, currency="EUR", contract_id=uuid.uuid4(), client_id=uuid.uuid4(),
                      developer_id=uuid.uuid4())


async def test_the_built_in_fee_policy_follows_the_settings(make_settings: Any) -> None:
    site = site_with(make_settings, payments={"developer_fee_percent": 12.5, "client_fee_percent": 3})
    policy = site.plugins.fee_policy(site)
    assert isinstance(policy, PercentageFees)
    assert (policy.release_fee(context(10_000)), policy.client_fee(context(10_000))) == (1_250, 300)
    assert [gateway.id for gateway in site.gateways] == ["sandbox"]  # the built-in one
    await site.db.dispose()


async def test_a_plugins_fee_policy_and_gateways_win(make_settings: Any) -> None:
    site = site_with(make_settings, PaymentsPlugin("acme", "globex"))
    assert site.plugins.fee_policy(site).release_fee(context(10_000)) == 500
    assert sorted(gateway.id for gateway in site.gateways) == ["acme", "globex", "sandbox"]
    assert site.gateways.get("globex").name == "Globex"
    await site.db.dispose()


async def test_two_plugins_with_one_gateway_id_are_named(make_settings: Any) -> None:
    site = site_with(make_settings, PaymentsPlugin("acme"), PaymentsPlugin("acme"))
    with pytest.raises(ValueError, match="two plugins register the payment gateway 'acme'"):
        site.gateways  # noqa: B018
    await site.db.dispose()
