"""disputes: either party disputes a funded or submitted milestone; its escrow freezes until the
other party fails to respond in time (the opener wins) or an admin splits it.

Settings: ``[plugins.disputes] response_days`` (default 5). Its table, ``disputes``, is on its
own migration branch, ``disputes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercato import hookimpl

from .models import Dispute
from .service import PLUGIN_ID, DisputeService, DisputeSettings

if TYPE_CHECKING:
    from mercato.core.site import Site
    from mercato.core.timers import TimerHandler

PACKAGE_DIR = Path(__file__).parent


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [Dispute]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


@hookimpl
def register_settings() -> dict[str, type[Any]]:
    return {PLUGIN_ID: DisputeSettings}


@hookimpl
def register_routes(site: Site) -> list[Any]:
    from .pages import PAGE_ROUTES
    from .routes import AdminDisputesController, DisputesController

    return [DisputesController, AdminDisputesController, *PAGE_ROUTES]


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "templates"]


@hookimpl
def register_timer_handlers(site: Site) -> list[TimerHandler]:
    """Disputes decided by default when the other party does not respond in time."""
    return DisputeService(site).timer_handlers()
