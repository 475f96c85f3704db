"""Projects and proposals as a built-in plugin."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.projects.dashboard import dashboard
from mercato.core.projects.models import PROJECT_MODELS
from mercato.core.projects.pages import PAGE_ROUTES
from mercato.core.projects.routes import API_CONTROLLERS
from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(PROJECT_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [*API_CONTROLLERS, *PAGE_ROUTES, dashboard]
