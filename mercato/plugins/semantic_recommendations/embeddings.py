"""Computing and storing embeddings of projects, services and developer profiles.

What is embedded: a project's or service's title, description and skill names; a
developer's headline, bio and skill names. An item whose text hash is unchanged is skipped,
so a redelivered event or a second ``mercato semantic embed`` costs a read, not the model.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import delete, select

from mercato.core.accounts.models import Profile, Skill, User, UserSkill, UserStatus
from mercato.core.db import utcnow
from mercato.core.events import Event, EventHandler
from mercato.core.events.types import HandlerFunc
from mercato.core.listings.models import Listing
from mercato.core.projects.models import Project

from .model import MODEL_NAME, embed, from_bytes, to_bytes
from .models import Embedding

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

KINDS = ("project", "service", "developer")
BATCH = 500


async def texts_of(session: AsyncSession, kind: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The text to embed for each of ``ids`` that exists (developers: active ones)."""
    names = dict((await session.execute(select(Skill.slug, Skill.name))).all())

    def skill_names(slugs: list[str]) -> str:
        return ", ".join(names.get(s, s) for s in slugs)

    if kind == "project":
        rows = await session.execute(
            select(Project.id, Project.title, Project.description, Project.skills).where(Project.id.in_(ids))
        )
        return {i: f"{t}\n{d}\n{skill_names(s or [])}" for i, t, d, s in rows}
    if kind == "service":
        rows = await session.execute(
            select(Listing.id, Listing.title, Listing.description, Listing.skills).where(Listing.id.in_(ids))
        )
        return {i: f"{t}\n{d}\n{skill_names(s or [])}" for i, t, d, s in rows}
    skills: dict[uuid.UUID, list[str]] = {}
    for user_id, slug in await session.execute(
        select(UserSkill.user_id, UserSkill.skill_slug)
        .where(UserSkill.user_id.in_(ids))
        .order_by(UserSkill.position)
    ):
        skills.setdefault(user_id, []).append(slug)
    people = await session.execute(
        select(User.id, Profile.headline, Profile.bio)
        .outerjoin(Profile, Profile.user_id == User.id)
        .where(User.id.in_(ids), User.status == UserStatus.ACTIVE, User.is_developer.is_(True))
    )
    return {i: f"{h or ''}\n{b or ''}\n{skill_names(skills.get(i, []))}" for i, h, b in people}


def text_hash(text: str) -> str:
    return hashlib.sha256(f"{MODEL_NAME}\n{text}".encode()).hexdigest()


async def refresh(session: AsyncSession, kind: str, ids: list[uuid.UUID]) -> int:
    """Embed those of ``ids`` whose text changed, drop those that are gone; returns how many
    were embedded."""
    if not ids:
        return 0
    texts = await texts_of(session, kind, ids)
    gone = [i for i in ids if i not in texts]
    if gone:
        await session.execute(delete(Embedding).where(Embedding.kind == kind, Embedding.item_id.in_(gone)))
    stored = {
        row.item_id: row
        for row in (
            await session.scalars(
                select(Embedding).where(Embedding.kind == kind, Embedding.item_id.in_(list(texts)))
            )
        )
    }
    changed = [i for i, text in texts.items() if i not in stored or stored[i].text_hash != text_hash(text)]
    if not changed:
        return 0
    vectors = await embed([texts[i] for i in changed])
    now = utcnow()
    for item_id, vector in zip(changed, vectors, strict=True):
        row = stored.get(item_id)
        if row is None:
            session.add(
                Embedding(
                    kind=kind,
                    item_id=item_id,
                    vector=to_bytes(vector),
                    text_hash=text_hash(texts[item_id]),
                    updated_at=now,
                )
            )
        else:
            row.vector, row.text_hash, row.updated_at = to_bytes(vector), text_hash(texts[item_id]), now
    await session.flush()
    return len(changed)


async def vectors(session: AsyncSession, kind: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, np.ndarray]:
    """Stored vectors of those of ``ids`` that have one."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Embedding.item_id, Embedding.vector).where(Embedding.kind == kind, Embedding.item_id.in_(ids))
    )
    return {item_id: from_bytes(data) for item_id, data in rows}


async def embed_all(site: Site, kind: str, progress: Callable[[int], None] | None = None) -> int:
    """(Re)compute the embeddings of every ``kind`` item, :data:`BATCH` per transaction."""
    query = {
        "project": select(Project.id).order_by(Project.id),
        "service": select(Listing.id).order_by(Listing.id),
        "developer": select(User.id).where(User.is_developer.is_(True)).order_by(User.id),
    }[kind]
    async with site.db.reading() as session:
        ids = list((await session.scalars(query)).all())
    done = 0
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        async with site.db.transaction() as session:
            done += await refresh(session, kind, batch)
        if progress is not None:
            progress(len(batch))
    return done


def event_handlers() -> list[EventHandler]:
    """Embeddings follow projects, services and profiles as they are published and edited."""

    def handler(kind: str, key: str) -> HandlerFunc:
        async def handle(event: Event, session: AsyncSession) -> None:
            await refresh(session, kind, [uuid.UUID(str(event.payload[key]))])

        return handle

    return [
        EventHandler(
            id="semantic-projects",
            events=("project.published", "project.updated"),
            handle=handler("project", "project_id"),
        ),
        EventHandler(
            id="semantic-services",
            events=("service.published", "service.updated"),
            handle=handler("service", "listing_id"),
        ),
        EventHandler(
            id="semantic-developers",
            events=("user.registered", "user.profile_updated"),
            handle=handler("developer", "user_id"),
        ),
    ]
