"""What can be reported: each kind of content is a :class:`ReportSubject` a plugin registers
(``register_report_subjects``), so moderation never imports the domains it moderates."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession


def excerpt(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut at ``limit`` characters (for :attr:`ReportedItem.excerpt`)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class ReportedItem:
    """What an admin sees of reported content."""

    owner_id: uuid.UUID
    """Who wrote or owns it (the person an admin may suspend)."""
    title: str
    excerpt: str
    """Plain text, at most a few hundred characters."""
    url: str
    """Where it shows in the theme (relative, e.g. ``/services/<id>``)."""
    hidden: bool
    """True while an admin keeps it hidden."""


@dataclass(frozen=True)
class ReportSubject:
    """One kind of content people can report: ``listing``, ``project``, ``message``, ``review``,
    ``profile`` or a plugin's own."""

    kind: str
    """Unique across plugins; what reports name (``{"subject_type": "review", …}``)."""
    label: str
    """Human words for it, e.g. ``a review``."""
    describe: Callable[[AsyncSession, uuid.UUID, uuid.UUID | None], Awaitable[ReportedItem | None]]
    """``(session, subject_id, viewer_id)``: the item as the viewer may see it, or None when it
    does not exist or the viewer may not see it (a report of it is then a 404). ``viewer_id``
    None means an admin looking, who sees everything, hidden included."""
    hide: Callable[[AsyncSession, uuid.UUID, bool], Awaitable[None]]
    """``(session, subject_id, hidden)``: hide it from everyone but its owner (True) or show
    it again (False), in the caller's transaction."""
