"""How the theme shows marketplace things: money, excerpts, category and skill names, and
which service errors belong on a form. Shared by the project and service pages, so it sits
below both (domains never import each other)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from litestar.exceptions import HTTPException
from sqlalchemy import select

from mercato.core.accounts.forms import CURRENCY_SYMBOLS, format_amount
from mercato.core.accounts.models import Skill, User
from mercato.core.catalog.services import CategoryOut, category_tree
from mercato.core.memo import memo

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

_API_HINT = re.compile(r"\s*\(GET /api/v1/[a-z/]+\)")
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_MARKS = re.compile(r"[#*_`>~|]+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE)


def format_money(minor: int, currency: str) -> str:
    """``$1,500``; currencies without a symbol here read ``CHF 1,500``."""
    symbol = CURRENCY_SYMBOLS.get(currency)
    amount = format_amount(minor)
    return f"{symbol}{amount}" if symbol else f"{currency} {amount}"


@functools.lru_cache(maxsize=1024)
def excerpt(markdown: str, length: int = 220) -> str:
    """The first words of a Markdown text as plain text (recent ones kept: lists show the same
    texts again and again)."""
    text = _LIST_ITEM.sub("\u2022 ", markdown)
    text = _MARKDOWN_MARKS.sub("", _MARKDOWN_LINK.sub(r"\1", text))
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    return text[:length].rsplit(" ", 1)[0].rstrip(",.;:") + "\u2026"


def plain_errors(errors: dict[str, str]) -> dict[str, str]:
    """Service messages meant for API clients, without their ``(GET /api/...)`` pointers."""
    return {key: _API_HINT.sub("", message) for key, message in errors.items()}


@dataclass
class Names:
    """Display names of categories and skills (projects store slugs)."""

    tree: list[CategoryOut]
    categories: dict[str, str]
    skills: dict[str, str]

    @cached_property
    def key(self) -> tuple[tuple[str, str], ...]:
        """Stands for the whole tree in a cache key: every category's slug and name, in order."""
        return tuple(self.categories.items())

    def category(self, slug: str) -> str:
        return self.categories.get(slug, slug)

    def skill(self, slug: str) -> str:
        return self.skills.get(slug, slug)


async def load_names(session: AsyncSession, site: Site | None = None) -> Names:
    """Display names of every category and skill; with ``site``, kept a minute (see ``memo``)."""
    if site is not None:
        return await memo(site, "catalog.names", lambda: load_names(session), keep=lambda n: n.tree)
    tree = await category_tree(session)
    categories: dict[str, str] = {}
    for top in tree:
        categories[top.slug] = top.name
        for child in top.children:
            categories[child.slug] = child.name
    skills = dict((await session.execute(select(Skill.slug, Skill.name))).all())
    return Names(tree=tree, categories=categories, skills=skills)


def needs_verification(site: Site, user: User) -> bool:
    return bool(site.settings.accounts.require_verified_email and not user.email_verified)


def refused(exc: HTTPException) -> bool:
    """Whether a service's error belongs on the form (not a 401/404 page)."""
    return exc.status_code not in (401, 404)
