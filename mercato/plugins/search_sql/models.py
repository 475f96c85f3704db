"""The search index table.

One row per findable thing (``kind`` + ``id``), flattened from a
:class:`~mercato.core.search.SearchDocument`. Two columns belong to one database each:

* ``tsv`` (PostgreSQL): the weighted ``tsvector`` (title A, skills B, text C) the backend
  computes on every write; NULL on SQLite. Its GIN index, and the trigram index on
  ``title`` (typo tolerance), are partial indexes ``WHERE tsv IS NOT NULL`` on SQLite, where
  they stay empty: they exist there only so the migrated schema equals these models.
* ``skills`` is JSON on SQLite and ``text[]`` on PostgreSQL, where a GIN index answers "has
  these skills" (``@>``) and facets unnest it; SQLite matches ``skills_text`` with ``LIKE``.
* ``fts_rowid`` (SQLite): the row of the FTS5 table ``search_fts`` holding this document's
  words; NULL on PostgreSQL, where its unique index is likewise partial and empty.

A document's body text is not kept here: it goes into ``tsv`` or ``search_fts`` only, and
the rows stay narrow (a search reads one row per match).

``search_fts`` itself (SQLite) is not a model: the migration creates it, and the schema
comparison ignores it like any table no plugin registers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base

TSV_TYPE = Text().with_variant(TSVECTOR(), "postgresql")
SKILLS_TYPE = JSON().with_variant(ARRAY(Text()), "postgresql")


class SearchEntry(Base):
    """A document as the ``search_sql`` backend keeps it."""

    __tablename__ = "search_documents"
    __table_args__ = (
        Index("ix_search_documents_kind_created_at", "kind", "created_at"),
        Index("ix_search_documents_kind_category", "kind", "category"),
        Index("ix_search_documents_skills", "skills", postgresql_using="gin",
              sqlite_where=text("tsv IS NOT NULL")),
        Index("ix_search_documents_tsv", "tsv", postgresql_using="gin",
              sqlite_where=text("tsv IS NOT NULL")),
        Index("ix_search_documents_title_trgm", "title", postgresql_using="gin",
              postgresql_ops={"title": "gin_trgm_ops"}, sqlite_where=text("tsv IS NOT NULL")),
        Index("ix_search_documents_fts_rowid", "fts_rowid", unique=True,
              postgresql_where=text("fts_rowid IS NOT NULL")),
    )

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    skills: Mapped[list[str]] = mapped_column(SKILLS_TYPE)
    """Skill slugs, each once (facets)."""
    skills_text: Mapped[str] = mapped_column(Text)
    """The slugs lower-cased between spaces, `` python django ``: "has skill X" is
    ``LIKE '% x %'`` on SQLite."""
    category: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    price_min: Mapped[int | None] = mapped_column(BigInteger)
    price_max: Mapped[int | None] = mapped_column(BigInteger)
    hourly: Mapped[bool] = mapped_column(Boolean)
    delivery_days: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    owner_id: Mapped[uuid.UUID | None]
    fts_rowid: Mapped[int | None] = mapped_column(Integer)
    tsv: Mapped[Any] = mapped_column(TSV_TYPE, nullable=True, deferred=True)
