"""``Database``: read sessions refuse to write; the pool keeps its connections."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from mercato.core.catalog.models import Category
from mercato.core.db import Database, ReadOnlySessionError
from mercato.core.site import Site


async def test_a_reading_session_refuses_to_write(migrated_settings: Any) -> None:
    site = Site(migrated_settings)
    try:
        async with site.db.transaction() as session:
            session.add(Category(slug="tools", name="Tools", position=1))

        with pytest.raises(ReadOnlySessionError):
            async with site.db.reading() as session:
                category = await session.get(Category, "tools")
                assert category is not None
                category.name = "Renamed"
                await session.flush()
        with pytest.raises(ReadOnlySessionError):
            async with site.db.reading() as session:
                await session.execute(update(Category).where(Category.slug == "tools").values(name="Renamed"))
        async with site.db.reading() as session:
            category = await session.get(Category, "tools")
            assert category is not None
            category.name = "Renamed"  # never flushed: nothing is written
            assert (await session.scalar(select(Category.name).where(Category.slug == "tools"))) == "Tools"

        async with site.db.reading() as session:
            assert (await session.scalar(select(Category.name).where(Category.slug == "tools"))) == "Tools"
    finally:
        await site.db.dispose()


def test_the_postgresql_pool_keeps_every_connection_it_opens() -> None:
    # An overflow connection is closed when it comes back to a full pool: under steady load
    # above pool_size, that was a new server process (and TLS handshake) every few requests.
    db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none", pool_size=7)
    pool: Any = db.engine.sync_engine.pool
    assert (pool.size(), pool._max_overflow) == (7, 0)
