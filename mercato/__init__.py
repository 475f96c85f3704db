"""mercato: a plugin-based, self-hostable marketplace framework.

Public surface: :data:`hookimpl` to implement hooks, :func:`create_app`, :class:`Settings`
and :func:`load_settings`, ``__version__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("mercato")
"""Marks a plugin function as the implementation of the hook of the same name."""

if TYPE_CHECKING:
    from litestar import Litestar

    from mercato.core.settings import Settings


def create_app(settings: Settings | None = None, **kwargs: Any) -> Litestar:
    """Build the ASGI app of a site (see :func:`mercato.core.app.create_app`)."""
    from mercato.core.app import create_app as _create_app

    return _create_app(settings, **kwargs)


def __getattr__(name: str) -> Any:
    if name in {"Settings", "load_settings"}:
        from mercato.core import settings

        return getattr(settings, name)
    raise AttributeError(name)


__all__ = ["Settings", "__version__", "create_app", "hookimpl", "load_settings"]
