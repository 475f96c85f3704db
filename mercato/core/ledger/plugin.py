"""The ledger as a built-in plugin: its tables."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.ledger.models import LEDGER_MODELS
from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(LEDGER_MODELS)
