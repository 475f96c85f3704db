"""``mercato run``: migrations, the embedded nats-server (one for all workers), uvicorn."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click
import uvicorn

from mercato.core.app import create_app
from mercato.core.events.embedded import EmbeddedNats, EmbeddedNatsError
from mercato.core.logging import configure_logging
from mercato.core.plugins import PluginError

if TYPE_CHECKING:
    from mercato.core.settings import Settings
    from mercato.core.site import Site


async def _prepare(site: Site, prepare: Callable[[Site], Awaitable[None]]) -> None:
    try:
        await prepare(site)
    finally:
        await site.db.dispose()


def serve(
    obj: Any, settings: Settings, *, host: str, port: int, workers: int, reload: bool,
    migrate: bool | None, prepare: Callable[[Site], Awaitable[None]] | None = None,
) -> None:
    """Run the web server in the foreground until Ctrl-C."""
    from mercato.cli import fail
    from mercato.core import migrate as migrations

    configure_logging(settings.logging.level, settings.logging.format)
    if not settings.worker.in_web and not settings.events.nats_url:
        fail("`[worker] in_web = false` leaves background work to `mercato worker`, which needs a "
             "shared NATS: set `[events] nats_url`, or set in_web = true", 2)
    site = obj.site(settings)  # loads plugins and validates config before anything starts
    try:
        create_app(site=site)  # assembles routes once, so a plugin's mistake is reported here
    except PluginError as exc:
        fail(str(exc))
    if migrate is None:
        migrate = site.db.sqlite
    if migrate:
        try:
            migrations.upgrade(site)
        except Exception as exc:
            fail(f"database migration failed: {exc}")
    if prepare is not None:  # e.g. demo data, once the schema exists and before workers start
        asyncio.run(_prepare(site, prepare))
    embedded = None
    env = {"MERCATO_SITE": str(settings.site_path)}
    if reload:
        env["MERCATO_SITE__RELOAD_TEMPLATES"] = "true"
    if not settings.events.nats_url:
        embedded = EmbeddedNats(settings.data_path / "nats")
        try:
            env["MERCATO_EVENTS__NATS_URL"] = embedded.start()
        except EmbeddedNatsError as exc:
            fail(str(exc))
    os.environ.update(env)
    click.echo(f"mercato: serving {settings.site.name!r} on http://{host}:{port}/", err=True)
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit
    # (instead of dying by the signal) lets the `finally` below stop the embedded NATS.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            "mercato.core.app:app_from_environment", factory=True, host=host, port=port,
            workers=None if reload else workers, reload=reload, log_config=None,
            lifespan="on", timeout_graceful_shutdown=10,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if embedded is not None:
            embedded.stop()
        for key in env:
            os.environ.pop(key, None)
