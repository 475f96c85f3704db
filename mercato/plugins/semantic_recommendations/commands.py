"""``mercato semantic embed``: compute every embedding now, with a progress bar."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import click

from .embeddings import KINDS, embed_all

if TYPE_CHECKING:
    from mercato.core.site import Site


@click.group("semantic")
def semantic() -> None:
    """Manage the semantic recommender's embeddings."""


@semantic.command("embed")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Only this kind (repeatable).")
@click.pass_obj
def embed_command(ctx: Any, kinds: tuple[str, ...]) -> None:
    """(Re)compute the embeddings of projects, services and developer profiles whose text
    changed since they were last embedded (all of them the first time)."""
    from mercato.cli import fail

    site = ctx.site()
    try:
        counts = asyncio.run(_embed(site, list(kinds) or list(KINDS)))
    except Exception as exc:
        fail(f"embedding failed: {type(exc).__name__}: {exc}")
    for kind, count in counts.items():
        click.echo(f"{kind}: {count} embedded")


async def _embed(site: Site, kinds: list[str]) -> dict[str, int]:
    from mercato.core.migrate import upgrade_async

    counts: dict[str, int] = {}
    try:
        if site.db.sqlite:
            await upgrade_async(site)
        for kind in kinds:
            with click.progressbar(length=0, label=f"Embedding {kind}", file=sys.stderr) as bar:
                counts[kind] = await embed_all(site, kind, progress=bar.update)
    finally:
        await site.db.dispose()
    return counts
