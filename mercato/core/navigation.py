"""Navigation entries contributed by plugins through ``register_nav_items``."""

from __future__ import annotations

import msgspec


class NavItem(msgspec.Struct, frozen=True, kw_only=True):
    """One link in the theme's main navigation."""

    key: str
    """Stable identifier, e.g. ``"projects"``; a later plugin with the same key replaces it."""
    label: str
    """Text shown to people."""
    href: str
    """Where it points (a path on this site)."""
    order: int = 100
    """Lower comes first."""
    role: str | None = None
    """Shown only to people with this role (e.g. ``admin``); None: to everyone."""
