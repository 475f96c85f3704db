"""Stored embeddings: one vector per project, service and developer profile."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, UTCDateTime, utcnow


class Embedding(Base):
    """The embedding of one item's text (``kind``: ``project``, ``service`` or ``developer``)."""

    __tablename__ = "semantic_embeddings"

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    item_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    """A unit-length float32 vector, little-endian (``numpy.frombuffer(vector, "<f4")``)."""
    text_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the embedded text and the model's name: unchanged text is not embedded again."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
