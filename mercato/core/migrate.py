"""Running Alembic for a site: core revisions plus every plugin's branch.

Alembic's commands are synchronous and ``env.py`` drives an async engine with
``asyncio.run``, so callers already inside an event loop use the ``*_async`` helpers,
which run the command in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import mercato.migrations

if TYPE_CHECKING:
    from sqlalchemy import Table

    from mercato.core.site import Site

MIGRATIONS_DIR = Path(mercato.migrations.__file__).parent
CORE_VERSIONS = MIGRATIONS_DIR / "versions"
CORE_BRANCH = "mercato"


def kernel_models() -> list[type[Any]]:
    """Tables the kernel itself owns (present whatever plugins are loaded)."""
    from mercato.core.events.models import OutboxEvent, ProcessedEvent
    from mercato.core.ratelimit import RateLimitCounter

    return [OutboxEvent, ProcessedEvent, RateLimitCounter]


def owned_tables(site: Site) -> list[Table]:
    """The tables of the kernel and of every loaded plugin's ``register_models``."""
    tables: dict[str, Table] = {}
    for model in [*kernel_models(), *site.plugins.models(site)]:
        table = model.__table__
        tables[table.name] = table
    return list(tables.values())


def alembic_config(site: Site, *, stdout: Any = None, extra_location: str | None = None) -> Config:
    cfg = Config(stdout=stdout or io.StringIO())
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(CORE_VERSIONS), *(str(Path(p)) for p in site.plugins.migrations(site))]
    if extra_location:
        Path(extra_location).mkdir(parents=True, exist_ok=True)
        locations.append(str(Path(extra_location).resolve()))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(dict.fromkeys(locations)))
    cfg.attributes["site"] = site
    return cfg


def upgrade(site: Site, revision: str = "heads") -> None:
    command.upgrade(alembic_config(site), revision)


def downgrade(site: Site, revision: str) -> None:
    command.downgrade(alembic_config(site), revision)


def current(site: Site) -> str:
    out = io.StringIO()
    command.current(alembic_config(site, stdout=out), verbose=False)
    return out.getvalue()


def heads(site: Site) -> list[str]:
    return revision_graph(site)[0]


def revision_graph(site: Site) -> tuple[list[str], dict[str, frozenset[str]]]:
    """The heads, and every revision id the code knows with the revisions it stands on (its
    down revisions and its ``depends_on``), on every branch (one parse)."""
    scripts = ScriptDirectory.from_config(alembic_config(site))
    parents: dict[str, frozenset[str]] = {}
    for script in scripts.walk_revisions():
        found: set[str] = set()
        for value in (script.down_revision, script.dependencies):
            if isinstance(value, str):
                found.add(value)
            elif value:
                found.update(value)
        parents[script.revision] = frozenset(found)
    return list(scripts.get_heads()), parents


def revision(
    site: Site, message: str, *, plugin: str | None = None, autogenerate: bool = False,
    new_branch: bool = False, version_path: str | None = None,
) -> Any:
    """Create a revision on the core branch, or on ``plugin``'s branch."""
    cfg = alembic_config(site, stdout=io.StringIO(), extra_location=version_path)
    label = plugin or CORE_BRANCH
    cfg.attributes["only_tables"] = branch_tables(site, plugin)
    kwargs: dict[str, Any] = {"message": message, "autogenerate": autogenerate}
    if new_branch:
        kwargs.update(head="base", branch_label=label, version_path=version_path)
    else:
        kwargs.update(head=f"{label}@head", version_path=version_path)
    return command.revision(cfg, **kwargs)


def branch_tables(site: Site, plugin: str | None) -> set[str]:
    """Tables whose migrations live on ``plugin``'s branch, or (``None``) the core branch:
    the kernel's and those of models defined in ``mercato.core``."""
    pm = site.plugins.pm
    if plugin is None:
        models = [*kernel_models(), *site.plugins.models(site)]
        return {m.__table__.name for m in models if m.__module__.startswith("mercato.core.")}
    owner = pm.get_plugin(plugin)
    if owner is None:
        raise ValueError(f"no plugin `{plugin}` is loaded (see `mercato plugins`)")
    others = [p for _, p in pm.list_name_plugin() if p is not None and p is not owner]
    results = pm.subset_hook_caller("register_models", remove_plugins=others)(site=site)
    return {m.__table__.name for result in results for m in (result or ())}


async def upgrade_async(site: Site, revision: str = "heads") -> None:
    await asyncio.to_thread(upgrade, site, revision)


async def downgrade_async(site: Site, revision: str) -> None:
    await asyncio.to_thread(downgrade, site, revision)


async def current_async(site: Site) -> str:
    return await asyncio.to_thread(current, site)
