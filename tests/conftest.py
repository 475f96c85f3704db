"""Shared fixtures: real databases and a real nats-server.

With no environment, tests run on SQLite and an embedded nats-server (one per test
session). ``MERCATO_TEST_DATABASE_URL=postgresql+asyncpg://…`` and
``MERCATO_TEST_NATS_URL=nats://…`` run the same tests on PostgreSQL and an external NATS.

Each test gets its own database (a copy of a migrated template: a file copy on SQLite,
``CREATE DATABASE … TEMPLATE`` on PostgreSQL) and its own JetStream stream and subject
prefix, so tests never see each other's rows or events.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from mercato.core import migrate
from mercato.core.events.embedded import EmbeddedNats
from mercato.core.logging import configure_logging
from mercato.core.settings import Settings, load_settings
from mercato.core.site import Site
from tests import signature_cache

TEST_DATABASE_URL = os.environ.get("MERCATO_TEST_DATABASE_URL", "")
TEST_NATS_URL = os.environ.get("MERCATO_TEST_NATS_URL", "")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytest_plugins = ["tests.oauth_fixtures", "tests.smtp_fixtures"]
"""Real servers some tests talk to: an Authlib OAuth/OIDC server and an aiosmtpd server."""

CORE_HEAD = "0013"
"""The newest core migration; bump it with every core revision."""


def pytest_configure(config: pytest.Config) -> None:
    # Route structlog through the standard library so caplog sees mercato's log lines.
    configure_logging("INFO", "console")
    signature_cache.install()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"mercato database: {TEST_DATABASE_URL or 'SQLite (per-test file)'}",
        f"mercato nats: {TEST_NATS_URL or 'embedded nats-server'}",
        f"chromium: {CHROMIUM or 'missing (browser tests skipped)'}",
    ]


# ---------------------------------------------------------------------------
# NATS
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The NATS server every test shares (each with its own stream and prefix)."""
    if TEST_NATS_URL:
        yield TEST_NATS_URL
        return
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    url = server.start()
    yield url
    server.stop()


# ---------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


class Databases:
    """Makes fresh, migrated databases for tests, by copying a template."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[str] = []
        self._templates: dict[frozenset[str], str] = {}

    async def create_empty(self) -> str:
        name = f"mercato_test_{uuid.uuid4().hex[:12]}"
        if not TEST_DATABASE_URL:
            return f"sqlite+aiosqlite:///{self.root / (name + '.db')}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return str(make_url(TEST_DATABASE_URL).set(database=name).render_as_string(False))

    @staticmethod
    async def _admin(*statements: str) -> None:
        """Run statements on the PostgreSQL server's admin connection."""
        conn = await asyncpg.connect(_asyncpg_dsn(TEST_DATABASE_URL))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def create_migrated(self, settings: Settings) -> str:
        """A database migrated for the plugins ``settings`` loads (template cached per set)."""
        probe = Site(settings)
        key = frozenset(name for name, plugin in probe.plugins.pm.list_name_plugin() if plugin is not None)
        await probe.db.dispose()
        if key not in self._templates:
            url = await self.create_empty()
            template_settings = _with_database(settings, url)
            site = Site(template_settings)
            await migrate.upgrade_async(site)
            await site.db.dispose()
            self._templates[key] = url
        return await self._copy(self._templates[key])

    async def _copy(self, template_url: str) -> str:
        name = f"mercato_test_{uuid.uuid4().hex[:12]}"
        template = make_url(template_url)
        if not TEST_DATABASE_URL:
            target = self.root / (name + ".db")
            shutil.copyfile(str(template.database), target)
            return f"sqlite+aiosqlite:///{target}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
        self.created.append(name)
        return str(template.set(database=name).render_as_string(False))

    async def drop_all(self) -> None:
        if not TEST_DATABASE_URL or not self.created:
            return
        await self._admin(
            *(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in reversed(self.created))
        )


def _with_database(settings: Settings, url: str) -> Settings:
    import msgspec

    return msgspec.structs.replace(
        settings, database=msgspec.structs.replace(settings.database, url=url)
    )


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("databases"))
    yield dbs
    await dbs.drop_all()


# ---------------------------------------------------------------------------
# Settings and sites
# ---------------------------------------------------------------------------


MakeSettings = Callable[..., Settings]


OFF_BY_DEFAULT = ("semantic_recommendations",)
"""Built-ins the tests switch off unless they ask for them (``plugins={"disabled": []}``):
the semantic recommender embeds every profile, project and service an event touches, work
the other tests do not need."""


@pytest.fixture
def make_settings(tmp_path: Path, nats_url: str) -> MakeSettings:
    """Settings for a site in ``tmp_path`` on the shared NATS with a private stream.

    Keyword arguments are nested overrides, e.g. ``make_settings(site={"name": "X"})``.
    Installed third-party plugins are not loaded unless a test asks for them.
    """
    token = uuid.uuid4().hex[:10]

    def make(site_dir: Path | None = None, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "events": {
                "nats_url": nats_url, "stream": f"TEST_{token.upper()}",
                "subject_prefix": f"t{token}", "relay_sweep_seconds": 0.5,
                "backoff_seconds": [0.2, 0.2, 0.2], "max_deliver": 3,
            },
            "plugins": {"load_entry_points": False, "disabled": list(OFF_BY_DEFAULT)},
            "logging": {"format": "console"},
        }
        _merge(base, overrides)
        return load_settings(site_dir or tmp_path, environ={}, overrides=base)

    return make


def _merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


@pytest.fixture
async def migrated_settings(make_settings: MakeSettings, databases: Databases) -> Settings:
    """Settings whose database is fresh and migrated."""
    settings = make_settings()
    return _with_database(settings, await databases.create_migrated(settings))


class SiteFactory:
    """Starts sites for a test and always shuts them down (deleting their streams)."""

    def __init__(self, databases: Databases) -> None:
        self.databases = databases
        self.sites: list[Site] = []

    async def start(self, settings: Settings, *, migrated: bool = True, background: bool = True,
                    pm: Any = None) -> Site:
        if migrated and not settings.database.url:
            settings = _with_database(settings, await self.databases.create_migrated(settings))
        site = Site(settings, pm=pm)
        await site.startup(background=background)
        self.sites.append(site)
        return site

    async def close(self) -> None:
        for site in reversed(self.sites):
            await site.shutdown()
        self.sites.clear()


@pytest.fixture
async def sites(databases: Databases, nats_url: str) -> AsyncIterator[SiteFactory]:
    factory = SiteFactory(databases)
    yield factory
    streams = {site.settings.events.stream for site in factory.sites}
    await factory.close()
    await _delete_streams(nats_url, streams)


async def _delete_streams(url: str, streams: set[str]) -> None:
    import nats

    if not streams:
        return
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for stream in streams:
            with contextlib.suppress(Exception):  # already gone
                await js.delete_stream(stream)
    finally:
        await nc.close()


@pytest.fixture
def chromium() -> str:
    if not CHROMIUM:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM
