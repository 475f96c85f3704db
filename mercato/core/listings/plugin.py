"""Service listings and orders as a built-in plugin."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.listings.models import LISTING_MODELS
from mercato.core.listings.pages import PAGE_ROUTES
from mercato.core.listings.routes import API_CONTROLLERS
from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(LISTING_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [*API_CONTROLLERS, *PAGE_ROUTES]
