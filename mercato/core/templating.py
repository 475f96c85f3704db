"""The Jinja environment: the site's folder → plugin folders → theme → default theme.

``{% extends "default:base.html" %}`` always reaches the bundled default theme, so an
override can extend the very template it replaces.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from litestar.response import Template
from markupsafe import Markup

import mercato.themes

if TYPE_CHECKING:
    from litestar import Request

    from mercato.core.site import Site

THEMES_ROOT = Path(mercato.themes.__file__).parent
DEFAULT_THEME = THEMES_ROOT / "default"
FRAGMENTS_KEPT = 512
"""Rendered fragments kept per site (see :meth:`Templates.fragment`)."""


def resolve_theme(name: str, site_path: Path) -> Path:
    """A bundled theme by name, or a folder (relative to the site folder)."""
    bundled = THEMES_ROOT / name
    if name.isidentifier() and (bundled / "templates").is_dir():
        return bundled
    folder = (site_path / name).resolve()
    if (folder / "templates").is_dir():
        return folder
    from mercato.core.settings import ConfigError

    raise ConfigError(
        f"`site.theme` = {name!r}: no bundled theme of that name and no folder "
        f"{folder}/templates"
    )


class Templates:
    """Owns the Jinja environment and builds page context."""

    def __init__(self, site: Site) -> None:
        self.site = site
        settings = site.settings
        theme = resolve_theme(settings.site.theme, settings.site_path)
        self.theme_dirs = list(dict.fromkeys([theme, DEFAULT_THEME]))
        search_path: list[Path] = []
        site_templates = settings.site_path / settings.site.templates_dir
        if site_templates.is_dir():
            search_path.append(site_templates)
        search_path += [Path(d) for d in site.plugins.template_dirs(site)]
        search_path += [t / "templates" for t in self.theme_dirs]
        self.search_path = list(dict.fromkeys(search_path))
        loader = jinja2.ChoiceLoader(
            [
                jinja2.PrefixLoader(
                    {"default": jinja2.FileSystemLoader(DEFAULT_THEME / "templates")},
                    delimiter=":",
                ),
                jinja2.FileSystemLoader(self.search_path),
            ]
        )
        self.env = jinja2.Environment(
            loader=loader, autoescape=jinja2.select_autoescape(default=True),
            enable_async=False, trim_blocks=True, lstrip_blocks=True,
            auto_reload=settings.site.reload_templates,
        )
        self.env.globals.update(site_name=settings.site.name, static_url=static_url,
                                locale=settings.site.locale)
        site.plugins.prepare_jinja_env(site, self.env)
        self._fragments: OrderedDict[tuple[str, Hashable], Markup] = OrderedDict()

    async def context(
        self, request: Request[Any, Any, Any] | None, template_name: str,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Base variables, then the page's own, then ``extra_template_vars`` from plugins."""
        context: dict[str, Any] = {
            "nav_items": self.site.plugins.nav_items(self.site),
            "current_path": request.url.path if request is not None else "",
            "flash_messages": [],
            "request": request,
        }
        context.update(values or {})
        context.update(
            await self.site.plugins.extra_template_vars(self.site, request, template_name)
        )
        user = context.get("current_user")
        roles: frozenset[str] = getattr(user, "roles", frozenset())
        context["nav_items"] = [item for item in context["nav_items"]
                                if getattr(item, "role", None) is None or item.role in roles]
        return context

    async def page(
        self, request: Request[Any, Any, Any], template_name: str,
        values: dict[str, Any] | None = None, *, status_code: int = 200,
    ) -> Template:
        """A themed HTML response."""
        context = await self.context(request, template_name, values)
        return Template(template_name=template_name, context=context, status_code=status_code)

    def fragment(self, template_name: str, key: Hashable, values: dict[str, Any]) -> Markup:
        """``template_name`` rendered with ``values`` alone, kept per ``key``: for parts many
        pages share, such as a filter sidebar. ``key`` must stand for everything in ``values``
        the template shows. With ``reload_templates`` on, nothing is kept."""
        if self.env.auto_reload:
            return Markup(self.env.get_template(template_name).render(values))
        full = (template_name, key)
        html = self._fragments.get(full)
        if html is None:
            html = self._fragments[full] = Markup(self.env.get_template(template_name).render(values))
            if len(self._fragments) > FRAGMENTS_KEPT:
                self._fragments.popitem(last=False)
        else:
            self._fragments.move_to_end(full)
        return html

    async def render(self, template_name: str, **values: Any) -> str:
        """Render to a string outside a request (e-mails, previews)."""
        context = await self.context(None, template_name, values)
        return self.env.get_template(template_name).render(context)


def static_url(path: str) -> str:
    """URL of a file under one of the static folders."""
    return "/static/" + path.lstrip("/")
