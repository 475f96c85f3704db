"""Per-site values that are costly to load and change rarely (the category tree, the skill
catalogue), kept in ``site.state`` for a short while.

These catalogues are synced from the packaged TOML files at start-up, so within one process
they do not change; the expiry only lets an instance notice a sibling that started with newer
files (a rolling deploy) without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mercato.core.site import Site

T = TypeVar("T")

SECONDS = 60.0


async def memo(
    site: Site,
    key: str,
    load: Callable[[], Awaitable[T]],
    *,
    seconds: float = SECONDS,
    keep: Callable[[T], Any] = bool,
) -> T:
    """``await load()``, or what it gave less than ``seconds`` ago. Values ``keep`` refuses
    (by default: empty ones, say a catalogue not seeded yet) are not kept."""
    now = time.monotonic()
    held = site.state.get(key)
    if held is not None and held[0] > now:
        return held[1]  # type: ignore[no-any-return]
    value = await load()
    if keep(value):
        site.state[key] = (now + seconds, value)
    return value
