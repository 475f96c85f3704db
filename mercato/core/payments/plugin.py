"""Payments as a built-in plugin: the payments and payout-methods tables, the wallet's API and
pages, and the built-in fee policy, which answers ``get_fee_policy`` last so that any other
plugin's policy wins."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.payments.fees import FeePolicy, PercentageFees
from mercato.core.payments.models import PAYMENT_MODELS
from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(PAYMENT_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    from mercato.core.payments.pages import PAGE_ROUTES
    from mercato.core.payments.routes import PaymentsController, WalletController

    return [PaymentsController, WalletController, *PAGE_ROUTES]


@hookimpl
def register_timer_handlers(site: Site) -> list[Any]:
    """Refunds and payouts with no answer from their gateway are looked up there."""
    from mercato.core.payments.refunds import Refunds
    from mercato.core.payments.wallet import Wallet

    return [*Refunds(site).timer_handlers(), *Wallet(site).timer_handlers()]


@hookimpl(trylast=True)
def get_fee_policy(site: Site) -> FeePolicy:
    return PercentageFees.from_settings(site.settings.payments)
