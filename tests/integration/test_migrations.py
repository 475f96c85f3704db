"""Alembic: the migrated schema equals the models, and migrations run both ways."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from mercato.core import migrate
from mercato.core.db import Base
from mercato.core.site import Site
from tests.conftest import CORE_HEAD, _with_database


async def schema_diff(site: Site) -> list[Any]:
    allowed = {table.name for table in migrate.owned_tables(site)}

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return name in allowed
        table = getattr(obj, "table", None)
        return table is None or table.name in allowed

    def compare(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"include_object": include, "compare_type": True}
        )
        return compare_metadata(context, Base.metadata)

    async with site.db.engine.connect() as connection:
        return await connection.run_sync(compare)


async def table_names(site: Site) -> set[str]:
    async with site.db.engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def test_migrated_schema_matches_the_models(make_settings: Any, databases: Any) -> None:
    site = Site(_with_database(make_settings(), await databases.create_empty()))
    try:
        await migrate.upgrade_async(site)
        assert await schema_diff(site) == []
        tables = await table_names(site)
        assert {"outbox", "processed_events", "rate_limit_counters", "users", "auth_sessions",
                "alembic_version"} <= tables
        assert CORE_HEAD in (await migrate.current_async(site))
    finally:
        await site.db.dispose()


async def test_downgrade_to_base_and_upgrade_again(make_settings: Any, databases: Any) -> None:
    site = Site(_with_database(make_settings(), await databases.create_empty()))
    try:
        await migrate.upgrade_async(site)
        await migrate.downgrade_async(site, "mercato@base")
        assert await table_names(site) <= {"alembic_version"}
        await migrate.upgrade_async(site)
        assert await schema_diff(site) == []
    finally:
        await site.db.dispose()


def test_core_branch_has_a_single_head(make_settings: Any) -> None:
    site = Site(make_settings())
    assert sorted(migrate.heads(site)) == sorted([CORE_HEAD, "search_sql_0001"])  # core + one plugin branch
