"""The timers table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


class Timer(UUIDPrimaryKey, Base):
    """Work of ``kind`` for ``ref`` due at ``due_at``; one timer per kind and ref."""

    __tablename__ = "timers"
    __table_args__ = (UniqueConstraint("kind", "ref"),)

    kind: Mapped[str] = mapped_column(String(60))
    ref: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


TIMER_MODELS: list[type[Base]] = [Timer]
