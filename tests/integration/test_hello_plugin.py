"""The example plugin ``examples/hello-plugin``, found the way a real install finds it.

The plugin is not pip-installed (that would load it in every other test): a fixture puts
its ``src`` folder and a minimal ``mercato_hello-0.1.0.dist-info`` carrying the entry point
on ``sys.path``, so ``importlib.metadata`` discovers it exactly like an installed one.
Runs on whatever database and NATS the fixtures give (SQLite/embedded by default).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from litestar.testing import AsyncTestClient
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection

from mercato import create_app
from mercato.core import migrate
from mercato.core.db import Base
from mercato.core.events.consumers import durable_name
from mercato.core.plugins import describe_plugins
from mercato.core.settings import ConfigError, Settings
from mercato.core.site import Site
from tests.conftest import CORE_HEAD, Databases, MakeSettings, _delete_streams, _with_database

PLUGIN_SRC = Path(__file__).resolve().parents[2] / "examples" / "hello-plugin" / "src"
T = TypeVar("T")
HELLO_TABLES = {"hello_greetings", "hello_replies"}
CORE_TABLES = {"outbox", "processed_events"}
HELLO_HOOKS = {
    "register_settings", "register_routes", "register_template_dirs", "register_nav_items",
    "register_models", "register_migrations", "register_event_handlers",
}


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def hello_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Make ``mercato_hello`` importable and its entry point visible for this module only."""
    site_packages = tmp_path_factory.mktemp("hello-site-packages")
    dist_info = site_packages / "mercato_hello-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mercato-hello\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text("[mercato]\nhello = mercato_hello\n",
                                                encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(PLUGIN_SRC))
        mp.syspath_prepend(str(site_packages))
        yield
    for name in [n for n in sys.modules if n == "mercato_hello" or n.startswith("mercato_hello.")]:
        del sys.modules[name]
    # The models registered their tables on the shared metadata; take them off again.
    for table in list(Base.metadata.tables.values()):
        if table.name in HELLO_TABLES:
            Base.metadata.remove(table)


def hello_settings(make_settings: MakeSettings, **hello: Any) -> Settings:
    return make_settings(plugins={"load_entry_points": True, "disabled": [], "hello": hello})


async def migrated_hello_settings(make_settings: MakeSettings, databases: Databases,
                                  **hello: Any) -> Settings:
    """Settings on a fresh database upgraded to every head, the ``hello`` branch included."""
    settings = _with_database(hello_settings(make_settings, **hello), await databases.create_empty())
    site = Site(settings)
    await migrate.upgrade_async(site)
    await site.db.dispose()
    return settings


@pytest.fixture
async def hello_app(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[tuple[Any, Site]]:
    """A running app with the plugin, configured with ``greeting = "Howdy"``."""
    settings = await migrated_hello_settings(make_settings, databases, greeting="Howdy")
    site = Site(settings)
    try:
        async with AsyncTestClient(create_app(site=site)) as client:
            yield client, site
    finally:
        await _delete_streams(settings.events.nats_url, {settings.events.stream})


async def table_names(site: Site) -> set[str]:
    async with site.db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def schema_differences(site: Site) -> list[Any]:
    """What ``mercato db revision --autogenerate`` would find, with env.py's filter."""
    allowed = {table.name for table in migrate.owned_tables(site)}

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                       compare_to: Any) -> bool:
        if type_ == "table":
            return name in allowed
        table = getattr(obj, "table", None)
        return table.name in allowed if table is not None else True

    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True,
                        "target_metadata": Base.metadata},
        )
        return list(compare_metadata(context, Base.metadata))

    async with site.db.engine.connect() as conn:
        return await conn.run_sync(compare)


async def current_revisions(site: Site) -> str:
    # `migrate.current` runs env.py, which calls asyncio.run: keep it off this loop.
    return await asyncio.to_thread(migrate.current, site)


async def on_app_loop(client: Any, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``fn(*args)`` on the app's event loop.

    ``AsyncTestClient`` runs the app (its lifespan included) in a portal thread with its
    own loop, so the site's engine pool and NATS connection belong to that loop; asyncpg
    connections in particular cannot be used from the test's loop.
    """
    return await asyncio.to_thread(client.blocking_portal.call, fn, *args)


async def replies_for(site: Site, greeting_id: uuid.UUID) -> list[str]:
    from mercato_hello.models import Reply

    async with site.db.transaction() as session:
        rows = await session.scalars(select(Reply.text).where(Reply.greeting_id == greeting_id))
        return list(rows)


async def row_counts(site: Site) -> tuple[int | None, int | None]:
    from mercato_hello.models import Greeting, Reply

    async with site.db.transaction() as session:
        return (await session.scalar(select(func.count()).select_from(Greeting)),
                await session.scalar(select(func.count()).select_from(Reply)))


async def publish_last_event_again(site: Site, event_type: str) -> int:
    """Publish the stream's last ``event_type`` event once more, without the de-duplication
    id the relay sets, as a redelivery would; returns its stream sequence."""
    js = site.events.js
    assert js is not None
    subject = f"{site.settings.events.subject_prefix}.{event_type}"
    original = await js.get_last_msg(site.settings.events.stream, subject)
    ack = await js.publish(subject, original.data, stream=site.settings.events.stream)
    assert ack.seq > original.seq
    return ack.seq


async def consumer_acked(site: Site, consumer: str, seq: int) -> bool:
    js = site.events.js
    assert js is not None
    info = await js.consumer_info(site.settings.events.stream, consumer)
    return info.ack_floor.stream_seq >= seq and info.num_ack_pending == 0


async def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------


async def test_plugin_is_loaded_through_its_entry_point(make_settings: MakeSettings) -> None:
    site = Site(hello_settings(make_settings))
    try:
        pm = site.plugins.pm
        assert pm.has_plugin("hello")
        assert pm.get_plugin("hello").__name__ == "mercato_hello"
        assert Path(pm.get_plugin("hello").__file__).is_relative_to(PLUGIN_SRC)
        rows = {row["id"]: row for row in describe_plugins(pm)}
        hello = rows["hello"]
        assert hello["builtin"] is False
        assert hello["version"] == "0.1.0"
        assert set(hello["hooks"]) == HELLO_HOOKS
        assert site.plugin_settings("hello").greeting == "Hello"
        assert [item.key for item in site.plugins.nav_items(site) if item.role is None] == ["hello"]
    finally:
        await site.db.dispose()


async def test_plugin_is_not_loaded_without_entry_points_or_when_disabled(
    make_settings: MakeSettings,
) -> None:
    for settings in (make_settings(),
                     make_settings(plugins={"load_entry_points": True, "disabled": ["hello"]})):
        site = Site(settings)
        try:
            assert not site.plugins.pm.has_plugin("hello")
            assert not any("hello" in str(path) for path in site.plugins.migrations(site))
        finally:
            await site.db.dispose()


def test_misspelt_setting_names_the_key(make_settings: MakeSettings) -> None:
    settings = hello_settings(make_settings, greting="x")
    with pytest.raises(ConfigError, match=r"plugins\.hello\.greting"):
        Site(settings)


def test_wrong_setting_type_names_the_key(make_settings: MakeSettings) -> None:
    settings = hello_settings(make_settings, greeting=["not", "a", "string"])
    with pytest.raises(ConfigError, match=r"plugins\.hello\.greeting"):
        Site(settings)


# ---------------------------------------------------------------------------
# Migrations
# ---------------------------------------------------------------------------


async def test_migrations_create_exactly_the_modelled_schema_and_downgrade_alone(
    make_settings: MakeSettings, databases: Databases,
) -> None:
    settings = _with_database(hello_settings(make_settings), await databases.create_empty())
    site = Site(settings)
    try:
        heads = {CORE_HEAD, "search_sql_0003", "sandbox_payments_0002", "disputes_0001", "notifications_0001",
                 "chat_0003", "reviews_0001", "hello_0001",
                 "recommendations_0001", "semantic_recommendations_0001"}
        assert set(migrate.heads(site)) == heads

        await migrate.upgrade_async(site)
        tables = await table_names(site)
        assert tables >= CORE_TABLES | HELLO_TABLES
        assert "hello_0001" in await current_revisions(site)
        assert await schema_differences(site) == []

        await migrate.downgrade_async(site, "hello@base")
        tables = await table_names(site)
        assert tables >= CORE_TABLES
        assert not HELLO_TABLES & tables
        current = await current_revisions(site)
        assert "hello_0001" not in current
        assert CORE_HEAD in current

        await migrate.upgrade_async(site)
        assert await table_names(site) >= CORE_TABLES | HELLO_TABLES
        assert await schema_differences(site) == []
    finally:
        await site.db.dispose()


# ---------------------------------------------------------------------------
# Pages and templates
# ---------------------------------------------------------------------------


async def test_home_page_is_extended_not_replaced(hello_app: tuple[Any, Site]) -> None:
    client, _ = hello_app
    response = await client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert 'data-testid="hello-banner"' in response.text
    assert "Hire vetted software engineers" in response.text  # the theme's own home content
    banner = response.text.index('data-testid="hello-banner"')
    assert banner < response.text.index('class="hero"')


async def test_hello_page_uses_settings_and_marks_its_nav_item(hello_app: tuple[Any, Site]) -> None:
    client, _ = hello_app
    response = await client.get("/hello", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Howdy, world!" in response.text
    assert "No greetings yet." in response.text
    links = re.findall(r'<a class="nav-link"[^>]*data-nav-key="hello"[^>]*>Hello</a>', response.text)
    assert links, "no Hello link in the navigation"
    assert all('aria-current="page"' in link for link in links)

    home = await client.get("/", headers={"Accept": "text/html"})
    assert 'data-nav-key="hello"' in home.text
    assert 'data-nav-key="hello" aria-current' not in home.text


# ---------------------------------------------------------------------------
# API and the event handler
# ---------------------------------------------------------------------------


async def test_greeting_is_stored_and_answered_exactly_once(hello_app: tuple[Any, Site]) -> None:
    client, site = hello_app
    response = await client.post("/api/v1/hello/greetings", json={"name": "Ada"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Ada"
    greeting_id = uuid.UUID(body["id"])

    replies = await wait_for(lambda: on_app_loop(client, replies_for, site, greeting_id),
                             what="the event handler's reply")
    assert replies == ["Howdy, Ada!"]

    # JetStream delivering the same event again (a crash before the ack, a second relay)
    # must not produce a second reply: the processed-event marker stops it.
    again_seq = await on_app_loop(client, publish_last_event_again, site, "hello.greeting_sent")
    consumer = durable_name("hello-replies", "hello.greeting_sent")
    await wait_for(lambda: on_app_loop(client, consumer_acked, site, consumer, again_seq),
                   what="the duplicate delivery to be acknowledged")
    await asyncio.sleep(0.5)
    assert await on_app_loop(client, replies_for, site, greeting_id) == ["Howdy, Ada!"]
    assert await on_app_loop(client, row_counts, site) == (1, 1)

    listed = (await client.get("/api/v1/hello/greetings")).json()
    assert [(item["id"], item["name"], item["reply"]) for item in listed] == [
        (str(greeting_id), "Ada", "Howdy, Ada!")
    ]
    page = await client.get("/hello", headers={"Accept": "text/html"})
    assert "Howdy, Ada!" in page.text


@pytest.mark.parametrize(
    ("payload", "message"),
    [({"name": ""}, "length >= 1"), ({"name": "x" * 81}, "length <= 80"),
     ({}, "missing required field `name`")],
)
async def test_invalid_greeting_is_400_problem_details(
    hello_app: tuple[Any, Site], payload: dict[str, Any], message: str,
) -> None:
    client, _ = hello_app
    response = await client.post("/api/v1/hello/greetings", json=payload)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["title"] == "Invalid request"
    [error] = body["errors"]
    assert error["source"] == "body"
    assert message in error["message"]
    if payload:  # a missing field is reported on the body as a whole (`data`) by Litestar
        assert error["field"] == "name"
    assert (await client.get("/api/v1/hello/greetings")).json() == []


def test_greeting_event_round_trips() -> None:
    from mercato_hello.events import GreetingSent

    from mercato.core.events import Event

    payload = GreetingSent(greeting_id=uuid.uuid4(), name="Ada")
    event = msgspec.json.decode(msgspec.json.encode(Event.of(payload)), type=Event)
    assert event.type == "hello.greeting_sent"
    assert event.payload_as(GreetingSent) == payload
