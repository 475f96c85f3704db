"""Moderation as a built-in plugin: its tables, report intake (API and page), and site
settings overrides kept in step on every instance."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.moderation.models import MODERATION_MODELS
from mercato.core.moderation.pages import PAGE_ROUTES
from mercato.core.moderation.routes import API_ROUTES
from mercato.core.moderation.site_settings import site_settings
from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(MODERATION_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [*API_ROUTES, *PAGE_ROUTES]


@hookimpl
async def on_startup(site: Site) -> None:
    """Apply the admins' stored settings and follow changes made on other instances."""
    await site_settings(site).start()


@hookimpl
async def on_shutdown(site: Site) -> None:
    await site_settings(site).stop()
