"""sandbox_payments: the built-in ``sandbox`` payment gateway, for trying a site and for tests.

It moves no real money. See :mod:`.gateway` for its test cards, test bank accounts and webhook
signatures. Its tables, ``sandbox_operations`` and ``sandbox_payout_accounts``, are on their own
migration branch, ``sandbox_payments``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercato import hookimpl
from mercato.core.timers import TimerHandler

from .gateway import GATEWAY_ID, PLUGIN_ID, WEBHOOK_TIMER, SandboxGateway, SandboxSettings
from .models import SandboxOperation, SandboxPayoutAccount

if TYPE_CHECKING:
    from mercato.core.site import Site

PACKAGE_DIR = Path(__file__).parent

__all__ = ["GATEWAY_ID", "SandboxGateway"]


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [SandboxOperation, SandboxPayoutAccount]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    """``wallet/payout_method_hint_sandbox.html``: the test accounts, on the payout-method form."""
    return [PACKAGE_DIR / "templates"]


def gateway(site: Site) -> SandboxGateway:
    """One gateway per site, kept in ``site.state``."""
    found = site.state.get(PLUGIN_ID)
    if not isinstance(found, SandboxGateway):
        found = site.state[PLUGIN_ID] = SandboxGateway(site)
    return found


@hookimpl
def register_settings() -> dict[str, type[Any]]:
    return {PLUGIN_ID: SandboxSettings}


@hookimpl
def register_payment_gateways(site: Site) -> list[Any]:
    return [gateway(site)]


@hookimpl
def register_timer_handlers(site: Site) -> list[TimerHandler]:
    """The sandbox's webhook deliveries."""
    return [TimerHandler(WEBHOOK_TIMER, gateway(site).deliver, transactional=False)]
