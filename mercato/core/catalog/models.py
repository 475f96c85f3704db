"""The category tree."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base


class Category(Base):
    """A kind of software work; two levels (``web`` → ``web-frontend``)."""

    __tablename__ = "categories"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_slug: Mapped[str | None] = mapped_column(ForeignKey("categories.slug"), default=None, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
