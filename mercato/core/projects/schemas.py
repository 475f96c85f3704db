"""The projects and proposals API's bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from mercato.core.reputation.schemas import ReputationOut

Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")]
Minor = Annotated[int, msgspec.Meta(ge=1, le=10_000_000_00, description="Minor units (cents).")]
BudgetType = Literal["fixed", "hourly"]
Duration = Literal["less_than_week", "1_4_weeks", "1_3_months", "3_6_months", "over_6_months"]
Experience = Literal["entry", "intermediate", "expert"]
Visibility = Literal["public", "invite_only"]
SkillSlug = Annotated[str, msgspec.Meta(max_length=64)]
Question = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Answer = Annotated[str, msgspec.Meta(max_length=3000)]


class Budget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: BudgetType
    min: Minor
    max: Minor
    currency: Currency = "USD"


class ProjectIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=5, max_length=120)]
    description: Annotated[str, msgspec.Meta(min_length=20, max_length=20_000)]
    category: Annotated[str, msgspec.Meta(max_length=64)]
    skills: Annotated[list[SkillSlug], msgspec.Meta(max_length=15)] = msgspec.field(default_factory=list)
    budget: Budget
    duration: Duration
    experience_level: Experience = "intermediate"
    visibility: Visibility = "public"
    screening_questions: Annotated[list[Question], msgspec.Meta(max_length=5)] = msgspec.field(
        default_factory=list)
    publish: bool = True
    """Open it for proposals at once (false: keep it as a draft)."""


class ProjectUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    title: Annotated[str, msgspec.Meta(min_length=5, max_length=120)] | None = None
    description: Annotated[str, msgspec.Meta(min_length=20, max_length=20_000)] | None = None
    category: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    skills: Annotated[list[SkillSlug], msgspec.Meta(max_length=15)] | None = None
    budget: Budget | None = None
    duration: Duration | None = None
    experience_level: Experience | None = None
    visibility: Visibility | None = None
    screening_questions: Annotated[list[Question], msgspec.Meta(max_length=5)] | None = None


class BudgetOut(msgspec.Struct, kw_only=True):
    type: str
    min: int
    max: int
    currency: str


class AttachmentOut(msgspec.Struct, kw_only=True):
    """A file on a project or a proposal."""

    id: uuid.UUID
    filename: str
    """The uploader's name for it (cleaned)."""
    content_type: str
    """Decided from the file's content."""
    size: int
    """Bytes."""
    url: str
    """Where the people allowed to see it download it: a permission-checked API route, never a
    public link."""
    created_at: datetime


class ProjectOut(msgspec.Struct, kw_only=True, tag_field="kind", tag="project"):
    id: uuid.UUID
    client_id: uuid.UUID
    client_name: str
    title: str
    description: str
    description_html: str
    category: str
    skills: list[str]
    budget: BudgetOut
    duration: str
    experience_level: str
    visibility: str
    screening_questions: list[str]
    status: str
    proposal_count: int
    created_at: datetime
    published_at: datetime | None
    is_owner: bool
    my_proposal_id: uuid.UUID | None
    """Your live or past proposal on this project (developers)."""
    attachments: list[AttachmentOut] = msgspec.field(default_factory=list)
    """Files the client attached (briefs, mock-ups, specs)."""
    hidden: bool = False
    """Hidden by moderators: only its client (and admins) see it."""


class ProjectPage(msgspec.Struct, kw_only=True):
    items: list[ProjectOut]
    next_cursor: str | None


class InviteIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    developer_id: uuid.UUID
    message: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class MilestoneIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    amount: Minor


class ProposalIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    cover_letter: Annotated[str, msgspec.Meta(min_length=20, max_length=10_000)]
    amount: Minor
    """The total price (fixed-price projects) or your hourly rate (hourly projects)."""
    currency: Currency
    duration_days: Annotated[int, msgspec.Meta(ge=1, le=730)]
    milestones: Annotated[list[MilestoneIn], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list)
    """Optional plan for fixed-price projects; the amounts must add up to ``amount``."""
    answers: Annotated[list[Answer], msgspec.Meta(max_length=5)] = msgspec.field(default_factory=list)


class ProposalUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    cover_letter: Annotated[str, msgspec.Meta(min_length=20, max_length=10_000)] | None = None
    amount: Minor | None = None
    duration_days: Annotated[int, msgspec.Meta(ge=1, le=730)] | None = None
    milestones: Annotated[list[MilestoneIn], msgspec.Meta(max_length=20)] | None = None
    answers: Annotated[list[Answer], msgspec.Meta(max_length=5)] | None = None


class DeclineIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class MilestoneOut(msgspec.Struct, kw_only=True):
    title: str
    amount: int


class DeveloperSummary(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    display_name: str
    headline: str
    skills: list[str]
    hourly_rate: int | None
    completed_jobs: int
    rating: float | None
    """Average of published reviews (1 to 5); ``None`` without any."""
    reputation: ReputationOut | None = None
    """All their figures as a developer (``None`` before their first contract)."""


class ProposalOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    project_id: uuid.UUID
    project_title: str
    developer: DeveloperSummary
    cover_letter: str
    cover_letter_html: str
    amount: int
    currency: str
    hourly: bool
    duration_days: int
    milestones: list[MilestoneOut]
    answers: list[str]
    status: str
    decline_message: str
    skill_match: float
    """Share of the project's skills the developer lists (0-1)."""
    submitted_at: datetime
    contract_id: uuid.UUID | None
    attachments: list[AttachmentOut] = msgspec.field(default_factory=list)
    """Files the developer attached (samples, a plan)."""


class ProposalPage(msgspec.Struct, kw_only=True):
    items: list[ProposalOut]
    next_cursor: str | None


class AcceptOut(msgspec.Struct, kw_only=True):
    proposal: ProposalOut
    contract_id: uuid.UUID
