"""``mercato search reindex``: rebuild the search index from the domains' tables."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any, cast, get_args

import click

from mercato.core.search import Kind, SearchBackend

from .documents import DOCUMENT_BUILDERS, all_ids, build_documents

if TYPE_CHECKING:
    from mercato.core.site import Site

REINDEX_BATCH = 500
KINDS: tuple[str, ...] = get_args(Kind)


@click.group("search")
def search() -> None:
    """Manage the search index."""


@search.command("reindex")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS),
              help="Only this kind (repeat for several). Default: every kind that has documents.")
@click.pass_obj
def reindex(ctx: Any, kinds: tuple[Kind, ...]) -> None:
    """Clear the index and rebuild it from the database, in batches of 500.

    Runs against whichever backend the site uses. While a kind is rebuilt, searches of
    it miss the documents not re-added yet. Kinds no domain builds documents for yet are
    skipped (their documents are left alone).
    """
    from mercato.cli import fail

    site = ctx.site()
    started = time.monotonic()
    try:
        counts = asyncio.run(_reindex(site, list(kinds) or cast("list[Kind]", list(KINDS))))
    except Exception as exc:
        fail(f"reindexing failed: {type(exc).__name__}: {exc}")
    for kind, count in counts.items():
        click.echo(f"{kind}: skipped (nothing builds {kind} documents yet)" if count is None
                   else f"{kind}: {count} indexed")
    total = sum(count or 0 for count in counts.values())
    click.echo(f"Reindexed {total} documents in {time.monotonic() - started:.1f}s.")


async def _reindex(site: Site, kinds: list[Kind]) -> dict[str, int | None]:
    from mercato.core.migrate import upgrade_async

    counts: dict[str, int | None] = {}
    try:
        if site.db.sqlite:
            await upgrade_async(site)
        backend: SearchBackend = site.plugins.search_backend(site)
        for kind in kinds:
            counts[kind] = await reindex_kind(site, backend, kind) if kind in DOCUMENT_BUILDERS else None
    finally:
        await site.db.dispose()
    return counts


async def reindex_kind(site: Site, backend: SearchBackend, kind: Kind, *, batch: int = REINDEX_BATCH) -> int:
    """Clear ``kind`` in ``backend`` and index every findable document of it again, with a
    progress bar on standard error; returns how many were indexed."""
    async with site.db.reading() as session:
        ids = await all_ids(session, kind)
    await backend.clear(kind)
    indexed = 0
    with click.progressbar(length=len(ids), label=f"Indexing {kind}", show_pos=True, file=sys.stderr) as bar:
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            async with site.db.reading() as session:
                documents = await build_documents(session, kind, chunk)
            await backend.index(documents)
            indexed += len(documents)
            bar.update(len(chunk))
    return indexed
