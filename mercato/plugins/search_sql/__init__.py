"""search_sql: the built-in search backend, in the site's own database.

* ``search_documents`` (its own Alembic branch, ``search_sql``) holds every findable
  project, service and developer, with SQLite FTS5 or PostgreSQL full text (and
  ``pg_trgm`` typo tolerance) beside it: see :mod:`.backend`;
* :class:`~.backend.SqlSearchBackend` answers ``get_search_backend`` last, so a plugin
  with an external engine replaces it by answering first;
* event handlers keep developer documents current (:mod:`.handlers`); the builders of
  documents per kind live in :mod:`.documents`, where projects and services are added;
* ``mercato search reindex`` rebuilds the index from the tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercato import hookimpl

from .backend import SqlSearchBackend
from .commands import search
from .handlers import event_handlers
from .models import SearchEntry

if TYPE_CHECKING:
    import click

    from mercato.core.events import EventHandler
    from mercato.core.site import Site

PLUGIN_ID = "search_sql"
PACKAGE_DIR = Path(__file__).parent

__all__ = ["PLUGIN_ID", "SearchEntry", "SqlSearchBackend"]


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [SearchEntry]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


@hookimpl(trylast=True)
def get_search_backend(site: Site) -> SqlSearchBackend:
    """One backend per site, kept in ``site.state``."""
    backend = site.state.get(PLUGIN_ID)
    if not isinstance(backend, SqlSearchBackend):
        backend = site.state[PLUGIN_ID] = SqlSearchBackend(site)
    return backend


@hookimpl
def register_event_handlers(site: Site) -> list[EventHandler]:
    return event_handlers(site)


@hookimpl
def register_commands() -> list[click.Command]:
    return [search]
