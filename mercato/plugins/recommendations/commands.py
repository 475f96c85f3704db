"""``mercato recommendations reindex``: rebuild the candidate index from the tables."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from .index import rebuild_all

if TYPE_CHECKING:
    from mercato.core.site import Site


@click.group("recommendations")
def recommendations() -> None:
    """Manage what recommendations are drawn from."""


@recommendations.command("reindex")
@click.pass_obj
def reindex(ctx: Any) -> None:
    """Rebuild the skill index of open projects and published services (event handlers keep it
    current; run this after writing projects or services straight into the database)."""
    from mercato.cli import fail

    site = ctx.site()
    started = time.monotonic()
    try:
        rows = asyncio.run(_reindex(site))
    except Exception as exc:
        fail(f"reindexing failed: {type(exc).__name__}: {exc}")
    click.echo(f"Indexed {rows} skill postings in {time.monotonic() - started:.1f}s.")


async def _reindex(site: Site) -> int:
    from mercato.core.migrate import upgrade_async

    try:
        if site.db.sqlite:
            await upgrade_async(site)
        with click.progressbar(length=0, label="Indexing", show_pos=True, file=sys.stderr) as bar:
            return await rebuild_all(site, progress=bar.update)
    finally:
        await site.db.dispose()
