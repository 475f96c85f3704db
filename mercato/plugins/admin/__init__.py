"""admin: the administrators' dashboard (KPIs and charts), people, the reports queue, listing
approval, site settings and the audit log, as API (``/api/v1/admin/*``) and theme pages
(``/admin``). Only the ``admin`` role may use them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercato import hookimpl
from mercato.core.navigation import NavItem

if TYPE_CHECKING:
    from mercato.core.site import Site

PACKAGE_DIR = Path(__file__).parent


@hookimpl
def register_routes(site: Site) -> list[Any]:
    from .pages import PAGE_ROUTES
    from .routes import AdminController

    return [AdminController, *PAGE_ROUTES]


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "templates"]


@hookimpl
def register_nav_items(site: Site) -> list[NavItem]:
    """ "Admin" in the main navigation, for admins only."""
    return [NavItem(key="admin", label="Admin", href="/admin", order=900, role="admin")]
