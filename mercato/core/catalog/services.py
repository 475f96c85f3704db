"""Reading and seeding the category tree."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from mercato.core.catalog.models import Category
from mercato.core.errors import field_error

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

CATEGORIES_FILE = Path(__file__).with_name("categories.toml")


class CategoryOut(msgspec.Struct, kw_only=True):
    slug: str
    name: str
    parent: str | None
    children: list[CategoryOut] = msgspec.field(default_factory=list)


def load_category_catalogue() -> list[dict[str, Any]]:
    with CATEGORIES_FILE.open("rb") as fh:
        return list(tomllib.load(fh)["category"])


async def sync_categories(session: AsyncSession) -> int:
    """Add shipped categories the database lacks and refresh names and order (idempotent)."""
    existing = {row.slug: row for row in (await session.execute(select(Category))).scalars()}
    changed = 0
    for position, entry in enumerate(load_category_catalogue()):
        values = {"name": entry["name"], "parent_slug": entry.get("parent"), "position": position}
        row = existing.get(entry["slug"])
        if row is None:
            session.add(Category(slug=entry["slug"], **values))
            changed += 1
            await session.flush()  # parents before children
        elif (row.name, row.parent_slug, row.position) != tuple(values.values()):
            row.name, row.parent_slug, row.position = entry["name"], entry.get("parent"), position
            changed += 1
    return changed


async def category_tree(session: AsyncSession) -> list[CategoryOut]:
    rows = list((await session.execute(select(Category).order_by(Category.position))).scalars())
    top = [CategoryOut(slug=r.slug, name=r.name, parent=None) for r in rows if r.parent_slug is None]
    by_slug = {c.slug: c for c in top}
    for row in rows:
        if row.parent_slug in by_slug:
            by_slug[row.parent_slug].children.append(
                CategoryOut(slug=row.slug, name=row.name, parent=row.parent_slug)
            )
    return top


async def resolve_category(session: AsyncSession, slug: str | None, *, field: str = "category") -> Category:
    """The category ``slug`` names; 400 naming ``field`` when unknown or missing."""
    category = await session.get(Category, slug) if slug else None
    if category is None:
        raise field_error(field, "Pick a category from the list (GET /api/v1/categories).")
    return category


async def expand_categories(session: AsyncSession, slugs: list[str]) -> list[str]:
    """``slugs`` plus the children of each (a filter on ``web`` also finds ``web-frontend``)."""
    if not slugs:
        return []
    children = (await session.execute(select(Category.slug).where(Category.parent_slug.in_(slugs)))).scalars()
    return list(dict.fromkeys([*slugs, *children]))
