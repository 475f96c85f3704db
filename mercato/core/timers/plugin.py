"""Timers as a built-in plugin: their table."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.site import Site
from mercato.core.timers.models import TIMER_MODELS


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(TIMER_MODELS)
