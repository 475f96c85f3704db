"""The catalogue as a built-in plugin: the categories table, its seed and its API."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.di import NamedDependency

from mercato import hookimpl
from mercato.core.catalog.models import Category
from mercato.core.catalog.services import CategoryOut, category_tree, sync_categories
from mercato.core.site import Site


@get("/api/v1/categories", tags=["catalog"], summary="The category tree of software work")
async def list_categories(site: NamedDependency[Site]) -> list[CategoryOut]:
    async with site.db.reading() as session:
        return await category_tree(session)


@hookimpl
def register_models(site: Site) -> list[Any]:
    return [Category]


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [list_categories]


@hookimpl
async def on_startup(site: Site) -> None:
    try:
        async with site.db.transaction() as session:
            await sync_categories(session)
    except Exception:  # the database may be down; /ready says so, and the next start retries
        import structlog

        structlog.get_logger("mercato.catalog").warning("could not seed categories at start")
