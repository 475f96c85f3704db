"""Contracts as a built-in plugin."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.contracts.models import CONTRACT_MODELS
from mercato.core.contracts.routes import ContractsController
from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(CONTRACT_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [ContractsController]
