"""Projects, invitations and proposals."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from mercato.core.db import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, utcnow
from mercato.core.markdown import render_markdown


class ProjectStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    HIRED = "hired"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    CLOSED = "closed"


PROJECT_TRANSITIONS: dict[str, frozenset[str]] = {
    ProjectStatus.DRAFT: frozenset({ProjectStatus.OPEN, ProjectStatus.CANCELLED}),
    ProjectStatus.OPEN: frozenset({ProjectStatus.HIRED, ProjectStatus.CLOSED, ProjectStatus.CANCELLED}),
    ProjectStatus.HIRED: frozenset({ProjectStatus.COMPLETED, ProjectStatus.CANCELLED}),
    ProjectStatus.COMPLETED: frozenset(),
    ProjectStatus.CANCELLED: frozenset(),
    ProjectStatus.CLOSED: frozenset(),
}
"""draft → open → hired → completed | cancelled; open → closed (without hiring)."""


class ProposalStatus(StrEnum):
    SUBMITTED = "submitted"
    SHORTLISTED = "shortlisted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


PROPOSAL_TRANSITIONS: dict[str, frozenset[str]] = {
    ProposalStatus.SUBMITTED: frozenset({ProposalStatus.SHORTLISTED, ProposalStatus.ACCEPTED,
                                         ProposalStatus.DECLINED, ProposalStatus.WITHDRAWN}),
    ProposalStatus.SHORTLISTED: frozenset({ProposalStatus.ACCEPTED, ProposalStatus.DECLINED,
                                           ProposalStatus.WITHDRAWN}),
    ProposalStatus.ACCEPTED: frozenset(),
    ProposalStatus.DECLINED: frozenset(),
    ProposalStatus.WITHDRAWN: frozenset({ProposalStatus.SUBMITTED}),
}
"""submitted → shortlisted → accepted | declined; submitted/shortlisted → withdrawn; a
withdrawn proposal may be submitted again while the project is open."""

LIVE_PROPOSALS = frozenset({ProposalStatus.SUBMITTED, ProposalStatus.SHORTLISTED})


class Project(UUIDPrimaryKey, Timestamps, Base):
    """Work a client wants done."""

    __tablename__ = "projects"
    __table_args__ = (Index("ix_projects_status_published_at", "status", "published_at"),)

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    """Markdown; rendered sanitised."""
    description_html: Mapped[str | None] = mapped_column(Text)
    """``description`` rendered, kept with it (set whenever it is; lists show many)."""

    @validates("description")
    def _render_description(self, key: str, value: str) -> str:
        self.description_html = str(render_markdown(value))
        return value
    category_slug: Mapped[str] = mapped_column(ForeignKey("categories.slug"), index=True)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    budget_type: Mapped[str] = mapped_column(String(10))
    """``fixed`` (a total) or ``hourly`` (a rate)."""
    budget_min: Mapped[int] = mapped_column(Integer)
    """Minor units of ``currency``."""
    budget_max: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    duration: Mapped[str] = mapped_column(String(20))
    experience_level: Mapped[str] = mapped_column(String(20))
    visibility: Mapped[str] = mapped_column(String(20), default="public")
    """``public`` or ``invite_only``."""
    screening_questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default=ProjectStatus.DRAFT)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    hired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    proposal_count: Mapped[int] = mapped_column(Integer, default=0)
    """Live proposals (submitted or shortlisted), kept by the service."""
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """Set while moderators hide it: only its client (and admins) still see it."""


class ProjectInvite(Base):
    """A client asked a developer to bid."""

    __tablename__ = "project_invites"

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                                  primary_key=True)
    developer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Proposal(UUIDPrimaryKey, Timestamps, Base):
    """A developer's bid on a project. One per developer and project: a withdrawn one is
    revived when they bid again."""

    __tablename__ = "proposals"
    __table_args__ = (UniqueConstraint("project_id", "developer_id"),)

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    developer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    cover_letter: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(Integer)
    """Minor units: the total price (fixed projects) or the hourly rate (hourly projects)."""
    currency: Mapped[str] = mapped_column(String(3))
    duration_days: Mapped[int] = mapped_column(Integer)
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """``[{"title", "amount"}]`` summing to ``amount`` (fixed projects); empty: one milestone."""
    answers: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Answers to the project's screening questions, in order."""
    status: Mapped[str] = mapped_column(String(20), default=ProposalStatus.SUBMITTED, index=True)
    decline_message: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    contract_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class Attachment(UUIDPrimaryKey, Base):
    """A file attached to a project (by its client) or to a proposal (by its developer).

    Exactly one of ``project_id`` and ``proposal_id`` is set; the row goes with its owner (ON
    DELETE CASCADE), but the stored file does not: whoever removes the owner collects
    ``storage_key`` first and deletes the files after the commit."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint("(project_id IS NULL) <> (proposal_id IS NULL)", name="one_owner"),
    )

    project_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, default=None
    )
    proposal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("proposals.id", ondelete="CASCADE"), index=True, default=None
    )
    uploader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    filename: Mapped[str] = mapped_column(String(160))
    """The uploader's name for it, cleaned; for display and ``Content-Disposition`` only."""
    content_type: Mapped[str] = mapped_column(String(100))
    """Decided from the content, never taken from the upload."""
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


PROJECT_MODELS: list[type[Base]] = [Project, ProjectInvite, Proposal, Attachment]
