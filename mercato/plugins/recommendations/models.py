"""The candidate index: which findable project or published service names which skill.

Projects and services keep their skills in a JSON list, which no portable index can search
by element. This table has one row per (item, skill), so "the newest projects needing
Python" is one range scan of ``ix_recommendation_skills_lookup``. Event handlers keep it
current (:mod:`.index`); the recommender re-checks every candidate against its own row, so a
row left behind for a moment never shows a closed project.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, UTCDateTime


class SkillPosting(Base):
    """One skill of one open public project (``kind`` ``project``) or published service
    (``service``)."""

    __tablename__ = "recommendation_skills"
    __table_args__ = (Index("ix_recommendation_skills_lookup", "kind", "skill_slug", "published_at"),)

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    item_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    skill_slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """When the item was published: candidates are read newest first."""
