"""The running site: settings, plugins, database, event backbone and templates of one
marketplace in one process. Hooks receive it as ``site``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
import structlog

from mercato.core.db import Database
from mercato.core.events.backbone import EventBackbone
from mercato.core.mail import Mailer
from mercato.core.payments.gateways import Gateways
from mercato.core.plugins import Plugins, build_plugin_manager
from mercato.core.templating import Templates
from mercato.core.timers.services import Sweeper

if TYPE_CHECKING:
    from mercato.core.settings import Settings

log = structlog.get_logger("mercato")


class Site:
    """One marketplace. Build it with :func:`mercato.create_app` or directly for workers."""

    def __init__(self, settings: Settings, *, pm: pluggy.PluginManager | None = None) -> None:
        self.settings = settings
        self.plugins = Plugins(pm or build_plugin_manager(settings))
        self.plugins.validate_plugin_settings(settings)
        self.db = Database(
            settings.database_url, echo=settings.database.echo,
            pool_size=settings.database.pool_size,
        )
        self.events = EventBackbone(settings, self.db)
        self.templates = Templates(self)
        self.mail = Mailer(self)
        self.state: dict[str, Any] = {}
        """Per-site objects plugins keep between calls, keyed by plugin id."""
        self._gateways: Gateways | None = None
        self.timers = Sweeper(self.db, self.plugins.timer_handlers(self))
        self.started = False
        self._revision_graph: tuple[frozenset[str], dict[str, frozenset[str]]] | None = None

    @property
    def name(self) -> str:
        return self.settings.site.name

    @property
    def gateways(self) -> Gateways:
        """The payment gateways plugins register, by id (built on first use)."""
        if self._gateways is None:
            self._gateways = Gateways(self.plugins.payment_gateways(self))
        return self._gateways

    def plugin_settings(self, plugin_id: str) -> Any:
        """The validated ``[plugins.<plugin_id>]`` Struct (see ``register_settings``)."""
        return self.plugins.settings_for(plugin_id)

    def _revisions(self) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
        """(heads, every known revision → the revisions it stands on), parsed once."""
        if self._revision_graph is None:
            from mercato.core import migrate

            heads, parents = migrate.revision_graph(self)
            self._revision_graph = frozenset(heads), parents
        return self._revision_graph

    def migration_heads(self) -> frozenset[str]:
        """The revisions a fully migrated database is at (core and plugin branches)."""
        return self._revisions()[0]

    def pending_migrations(self, applied: set[str]) -> list[str]:
        """Heads this code expects that the database lacks. A database *ahead* of this code
        (a revision we do not know, as during a rolling deploy) counts as up to date. A head
        another applied revision stands on (a plugin branch's ``depends_on``) is applied too,
        though Alembic's version table no longer lists it."""
        heads, parents = self._revisions()
        if applied - parents.keys():
            return []
        reached, todo = set(), list(applied)
        while todo:
            revision = todo.pop()
            if revision not in reached:
                reached.add(revision)
                todo.extend(parents.get(revision, ()))
        return sorted(heads - reached)

    def static_dirs(self) -> list[Path]:
        """Static folders in precedence order: site → plugins → theme → default theme."""
        site_static = self.settings.site_path / self.settings.site.static_dir
        dirs = [site_static] if site_static.is_dir() else []
        dirs += [Path(d) for d in self.plugins.static_dirs(self)]
        dirs += [theme / "static" for theme in self.templates.theme_dirs]
        return [d for d in dict.fromkeys(dirs) if d.is_dir()]

    async def startup(self, *, background: bool | None = None) -> None:
        """Connect to NATS, start background work (relay, consumers) and run ``on_startup``."""
        if background is None:
            background = self.settings.worker.in_web
        self.settings.data_path.mkdir(parents=True, exist_ok=True)
        self.gateways  # noqa: B018 - two plugins claiming one gateway id stop startup here
        await asyncio.to_thread(self._revisions)  # parse revision files once, off the request path
        await self.events.connect()
        if background:
            await self.events.start_background(self.plugins.event_handlers(self))
            self.timers.start()
        await self.plugins.on_startup(self)
        self.started = True
        log.info("site started", site=self.name, background=background,
                 database=self.db.engine.url.render_as_string(hide_password=True))

    async def shutdown(self) -> None:
        await self.plugins.on_shutdown(self)
        await self.timers.stop()
        await self.events.close()
        await self.db.dispose()
        self.started = False
