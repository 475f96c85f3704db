"""Built-in plugin: the site's own pages (the home page)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from mercato import hookimpl
from mercato.core.site import Site


@get("/", include_in_schema=False, name="home")
async def home(request: Request[Any, Any, Any], site: NamedDependency[Site]) -> Template:
    return await site.templates.page(request, "index.html")


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [home]
