"""Contracts as a built-in plugin."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.contracts.milestones import MilestoneService
from mercato.core.contracts.models import CONTRACT_MODELS
from mercato.core.contracts.routes import ContractsController, MilestonesController
from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(CONTRACT_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    from mercato.core.contracts.pages import PAGE_ROUTES

    return [ContractsController, MilestonesController, *PAGE_ROUTES]


@hookimpl
def register_timer_handlers(site: Site) -> list[Any]:
    """Auto-approval of silent submissions, and the end of payout holds."""
    return MilestoneService(site).timer_handlers()
