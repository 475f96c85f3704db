"""Alembic environment for mercato: one database, the core branch plus plugin branches.

Configured by :mod:`mercato.core.migrate`, which puts the running ``Site`` in
``config.attributes``; the engine is a fresh one (this runs in its own event loop).
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from mercato.core.db import Base, Database, UTCDateTime
from mercato.core.migrate import owned_tables

config = context.config
site = config.attributes["site"]
allowed = {table.name for table in owned_tables(site)}
only = config.attributes.get("only_tables")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in (only if only is not None else allowed)
    table = getattr(obj, "table", None)
    if table is not None:
        return table.name in (only if only is not None else allowed)
    return True


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write plain SQLAlchemy types into revisions, so they never import mercato's code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        version_table="alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()


async def main() -> None:
    db = Database(site.db.url)
    try:
        async with db.engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
    finally:
        await db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
asyncio.run(main())
