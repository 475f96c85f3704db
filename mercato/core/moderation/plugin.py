"""Moderation as a built-in plugin: its tables."""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.moderation.models import MODERATION_MODELS
from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(MODERATION_MODELS)
