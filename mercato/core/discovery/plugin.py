"""Discovery as a built-in plugin."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.discovery.pages import PAGE_ROUTES
from mercato.core.discovery.routes import search
from mercato.core.site import Site


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [search, *PAGE_ROUTES]
