"""The ``mercato`` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from mercato import __version__
from mercato.core.settings import CONFIG_FILENAME, ConfigError, Settings, load_settings

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class SiteContext:
    """What every command shares: the site folder, and lazily its settings and ``Site``."""

    def __init__(self, site_dir: str, overrides: dict[str, Any] | None = None) -> None:
        self.site_dir = site_dir
        self.overrides = overrides or {}
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.site_dir, overrides=self.overrides)
            except ConfigError as exc:
                fail(str(exc), EXIT_CONFIG)
        return self._settings

    def site(self, settings: Settings | None = None) -> Any:
        """Build the ``Site`` (loads and validates plugins), turning errors into exits."""
        from mercato.core.plugins import PluginError
        from mercato.core.site import Site

        try:
            return Site(settings or self.settings)
        except ConfigError as exc:
            fail(str(exc), EXIT_CONFIG)
        except PluginError as exc:
            fail(str(exc))


pass_site = click.make_pass_decorator(SiteContext)
"""Decorator for plugin commands: receive the :class:`SiteContext` of the invocation."""


class MercatoGroup(click.Group):
    """Built-in commands plus the ones plugins add through ``register_commands``."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        if "plugin_commands" not in ctx.meta:
            from mercato.core.plugins import PluginError, build_plugin_manager

            commands: dict[str, click.Command] = {}
            try:
                settings = load_settings(ctx.params.get("site_dir") or ".")
                pm = build_plugin_manager(settings)
            except (ConfigError, PluginError) as exc:
                pm = None  # built-in commands report it themselves when they load the site
                ctx.meta["plugin_error"] = exc
            if pm is not None:
                for result in pm.hook.register_commands():
                    for command in result or ():
                        commands.setdefault(command.name or "", command)
            ctx.meta["plugin_commands"] = commands
        return ctx.meta["plugin_commands"]

    def list_commands(self, ctx: click.Context) -> list[str]:
        builtin = super().list_commands(ctx)
        extra = [n for n in self._plugin_commands(ctx) if n not in builtin]
        return builtin + sorted(extra)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._plugin_commands(ctx).get(cmd_name)
            error = ctx.meta.get("plugin_error")
            if command is None and error is not None:
                fail(f"{error} (plugin commands are unavailable until this is fixed)",
                     EXIT_CONFIG if isinstance(error, ConfigError) else EXIT_FAILURE)
        return command


@click.group(cls=MercatoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--site", "site_dir", envvar="MERCATO_SITE", default=".", show_default=True,
              type=click.Path(file_okay=False), help="The site folder (holds mercato.toml).")
@click.version_option(__version__, prog_name="mercato")
@click.pass_context
def cli(ctx: click.Context, site_dir: str) -> None:
    """mercato: run and manage a self-hosted marketplace."""
    ctx.obj = SiteContext(site_dir)


def main() -> None:
    cli(prog_name="mercato")


# ---------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing mercato.toml.")
@click.option("--name", default="mercato", help="The marketplace's name.")
def init(directory: str, force: bool, name: str) -> None:
    """Create a site folder with a commented mercato.toml."""
    from mercato.core.sitefolder import write_config

    folder = Path(directory)
    target = folder / CONFIG_FILENAME
    if target.exists() and not force:
        fail(f"{target} already exists (use --force to overwrite it)")
    write_config(folder, name=name)
    click.echo(f"Created {target}")
    hint = "" if directory == "." else f"cd {directory} && "
    click.echo(f"Next: {hint}mercato run   (then open http://127.0.0.1:8000)")


# ---------------------------------------------------------------------------
# run, demo, worker
# ---------------------------------------------------------------------------


@cli.command()
@click.option("--host", default=None, help="Interface to bind (default from [server]).")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="Port (default from [server]).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Web worker processes (default from [server]).")
@click.option("--reload", is_flag=True, help="Restart when code changes (development).")
@click.option("--migrate/--no-migrate", default=None,
              help="Apply database migrations first (default: on for SQLite).")
@pass_site
def run(obj: SiteContext, host: str | None, port: int | None, workers: int | None,
        reload: bool, migrate: bool | None) -> None:
    """Serve the marketplace (and, by default, its background work)."""
    from mercato.core.server import serve

    settings = obj.settings
    serve(obj, settings, host=host or settings.server.host,
          port=settings.server.port if port is None else port,
          workers=workers or settings.server.workers, reload=reload, migrate=migrate)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Run a throw-away demo marketplace in a temporary folder (removed on exit)."""
    from mercato.core.demo import DEMO_ADMIN, DEMO_CLIENT, DEMO_DEVELOPER, DEMO_PASSWORD, prepare_demo
    from mercato.core.server import serve
    from mercato.core.sitefolder import write_config

    # A throw-away site: settings from this shell (MERCATO_DATABASE__URL…) must not leak in.
    for key in [k for k in os.environ if k.startswith("MERCATO_") and "__" in k]:
        del os.environ[key]
    folder = Path(tempfile.mkdtemp(prefix="mercato-demo-"))
    try:
        # A newcomer should try every flow at once, without waiting for e-mail.
        write_config(folder, name="mercato demo", demo=True, base_url=f"http://{host}:{port}")
        obj = SiteContext(str(folder))
        click.echo(f"Demo site in {folder} (removed on exit) — open http://{host}:{port}/\n"
                   f"Mail the site sends (verification, password reset) is at http://{host}:{port}/dev/mailbox")
        click.echo(f"Demo accounts (password {DEMO_PASSWORD!r}): {DEMO_CLIENT}, {DEMO_DEVELOPER} "
                   f"and the administrator {DEMO_ADMIN}")
        serve(obj, obj.settings, host=host, port=port, workers=1, reload=False, migrate=True,
              prepare=prepare_demo)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@cli.command()
@pass_site
def worker(obj: SiteContext) -> None:
    """Run background work without HTTP: the outbox relay and the event consumers."""
    from mercato.core.logging import configure_logging

    settings = obj.settings
    if not settings.events.nats_url:
        fail("`mercato worker` shares NATS with the web processes: set `[events] nats_url` "
             "(the embedded nats-server belongs to `mercato run`)", EXIT_CONFIG)
    configure_logging(settings.logging.level, settings.logging.format)
    site = obj.site(settings)
    asyncio.run(_run_worker(site))


async def _run_worker(site: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await _start_or_exit(site, background=True)
    click.echo("worker running; Ctrl-C to stop", err=True)
    try:
        await stop.wait()
    finally:
        await site.shutdown()


async def _start_or_exit(site: Any, *, background: bool) -> None:
    from mercato.core.events.backbone import NatsUnavailable
    from mercato.core.events.embedded import EmbeddedNatsError

    try:
        await site.startup(background=background)
    except (NatsUnavailable, EmbeddedNatsError) as exc:
        await site.db.dispose()
        fail(str(exc))


# ---------------------------------------------------------------------------
# db
# ---------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database migrations (core and every plugin branch)."""


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    from alembic.util import CommandError
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except (CommandError, ValueError) as exc:
        fail(str(exc))
    except (OperationalError, OSError) as exc:
        fail(f"cannot use the database: {exc}. Check `[database] url` in mercato.toml")


@db.command()
@click.argument("revision", default="heads")
@pass_site
def upgrade(obj: SiteContext, revision: str) -> None:
    """Upgrade to REVISION (default: every head)."""
    from mercato.core import migrate

    site = obj.site()
    with _database_errors():
        migrate.upgrade(site, revision)
        click.echo(migrate.current(site).strip() or "(empty database)")


@db.command()
@click.argument("revision")
@pass_site
def downgrade(obj: SiteContext, revision: str) -> None:
    """Downgrade to REVISION (e.g. `hello@base`, `-1`, `base`)."""
    from mercato.core import migrate

    site = obj.site()
    with _database_errors():
        migrate.downgrade(site, revision)
        click.echo(migrate.current(site).strip() or "(empty database)")


@db.command()
@pass_site
def current(obj: SiteContext) -> None:
    """Show the applied revision of each branch."""
    from mercato.core import migrate

    site = obj.site()
    with _database_errors():
        click.echo(migrate.current(site).strip() or "(empty database: run `mercato db upgrade`)")


@db.command()
@click.option("-m", "--message", required=True, help="What the revision changes.")
@click.option("--plugin", default=None, help="The plugin id whose branch gets the revision.")
@click.option("--autogenerate", is_flag=True, help="Compare models with the database.")
@click.option("--new-branch", is_flag=True, help="Start the plugin's branch (first revision).")
@click.option("--version-path", default=None, type=click.Path(file_okay=False),
              help="Folder for the new file (required with --new-branch).")
@pass_site
def revision(obj: SiteContext, message: str, plugin: str | None, autogenerate: bool,
             new_branch: bool, version_path: str | None) -> None:
    """Create a migration revision on the core branch or a plugin's branch."""
    from mercato.core import migrate

    if new_branch and not (plugin and version_path):
        fail("--new-branch needs --plugin and --version-path", EXIT_CONFIG)
    site = obj.site()
    with _database_errors():
        script = migrate.revision(site, message, plugin=plugin, autogenerate=autogenerate,
                                  new_branch=new_branch, version_path=version_path)
    scripts = script if isinstance(script, list) else [script]
    for item in scripts:
        if item is not None:
            click.echo(f"Created {item.path}")


# ---------------------------------------------------------------------------
# plugins
# ---------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_site
def plugins(obj: SiteContext, as_json: bool) -> None:
    """List loaded plugins, their versions and the hooks each implements."""
    from mercato.core.plugins import describe_plugins

    site = obj.site()
    rows = describe_plugins(site.plugins.pm)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(row["id"]) for row in rows), default=4)
    for row in rows:
        kind = "built-in" if row["builtin"] else (row["version"] or "?")
        note = f"  [{row['note']}]" if row.get("note") else ""
        click.echo(f"{row['id']:<{width}}  {kind:<10}  {', '.join(row['hooks'])}{note}")
    disabled = obj.settings.plugins.disabled
    if disabled:
        click.echo(f"disabled: {', '.join(disabled)}")
