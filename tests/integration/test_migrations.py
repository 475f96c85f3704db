"""Alembic: the migrated schema equals the models, and migrations run both ways."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import DateTime, Uuid, bindparam, inspect, text

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
    site = Site(_with_database(make_settings(plugins={"disabled": []}), await databases.create_empty()))
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
    site = Site(_with_database(make_settings(plugins={"disabled": []}), await databases.create_empty()))
    try:
        await migrate.upgrade_async(site)
        await migrate.downgrade_async(site, "mercato@base")
        assert await table_names(site) <= {"alembic_version"}
        await migrate.upgrade_async(site)
        assert await schema_diff(site) == []
    finally:
        await site.db.dispose()


def test_core_branch_has_a_single_head(make_settings: Any) -> None:
    site = Site(make_settings(plugins={"disabled": []}))
    # core + the built-in plugins with tables of their own
    assert sorted(migrate.heads(site)) == sorted([CORE_HEAD, "search_sql_0003", "sandbox_payments_0002",
                                                   "disputes_0001", "notifications_0001", "chat_0003",
                                                   "reviews_0001", "recommendations_0001",
                                                   "semantic_recommendations_0001"])



async def test_search_index_keeps_its_skills_across_search_sql_0002(make_settings: Any, databases: Any) -> None:  # noqa: E501
    """search_sql_0002 turns ``skills`` into ``text[]`` on PostgreSQL: rows keep their skills
    both ways (on SQLite the column stays JSON)."""
    site = Site(_with_database(make_settings(plugins={"disabled": []}), await databases.create_empty()))
    insert = text(
        "INSERT INTO search_documents (kind, id, title, text, skills, skills_text, hourly, created_at) "
        "VALUES ('project', :id, 'Stripe', '', :skills, ' python django ', false, :now)"
    ).bindparams(bindparam("id", type_=Uuid()), bindparam("now", type_=DateTime(timezone=True)))

    async def skills() -> list[str]:
        await site.db.engine.dispose()  # statements prepared before the migration are stale
        async with site.db.engine.connect() as connection:
            value = (await connection.execute(text("SELECT skills FROM search_documents"))).scalar_one()
        return json.loads(value) if isinstance(value, str) else list(value)  # JSON text, or text[]

    try:
        await migrate.upgrade_async(site, "search_sql_0001")
        async with site.db.engine.begin() as connection:
            row = {"id": uuid.uuid4(), "skills": '["python", "django"]', "now": datetime.now(UTC)}
            await connection.execute(insert, row)
        await migrate.upgrade_async(site)
        assert await skills() == ["python", "django"]
        await migrate.downgrade_async(site, "search_sql_0001")
        assert await skills() == ["python", "django"]
    finally:
        await site.db.dispose()
