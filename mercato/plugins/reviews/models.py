"""A review one contract party writes of the other."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, Timestamps, UTCDateTime, UUIDPrimaryKey


class Review(UUIDPrimaryKey, Timestamps, Base):
    """Written once per contract and author; kept blind (``published_at`` None) until both
    parties have written theirs or the review window closes."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("contract_id", "author_id"),
        Index("ix_reviews_subject_id_published_at", "subject_id", "published_at"),
    )

    contract_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    """The person reviewed: the contract's other party."""
    subject_role: Mapped[str] = mapped_column(String(10))
    """``developer`` when the client reviews the developer, ``client`` otherwise."""
    rating: Mapped[int] = mapped_column(Integer)
    """Overall, 1 to 5."""
    ratings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The sub-ratings for the subject's role, each 1 to 5."""
    comment: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    hidden: Mapped[bool] = mapped_column(default=False)
    """Hidden by an administrator: shown only to its author and subject, marked hidden."""
    reply: Mapped[str] = mapped_column(Text, default="")
    """The subject's one public reply."""
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
