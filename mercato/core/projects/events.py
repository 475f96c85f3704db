"""Events of projects and proposals."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mercato.core.events import EventPayload


class ProjectPublished(EventPayload, frozen=True):
    event_type: ClassVar[str] = "project.published"
    project_id: uuid.UUID
    client_id: uuid.UUID


class ProjectUpdated(EventPayload, frozen=True):
    event_type: ClassVar[str] = "project.updated"
    project_id: uuid.UUID


class ProjectHired(EventPayload, frozen=True):
    event_type: ClassVar[str] = "project.hired"
    project_id: uuid.UUID
    proposal_id: uuid.UUID
    developer_id: uuid.UUID
    contract_id: uuid.UUID


class ProjectClosed(EventPayload, frozen=True):
    event_type: ClassVar[str] = "project.closed"
    project_id: uuid.UUID
    status: str
    """``closed`` or ``cancelled``."""


class ProjectInvited(EventPayload, frozen=True):
    event_type: ClassVar[str] = "project.invited"
    project_id: uuid.UUID
    developer_id: uuid.UUID


class ProposalSubmitted(EventPayload, frozen=True):
    event_type: ClassVar[str] = "proposal.submitted"
    proposal_id: uuid.UUID
    project_id: uuid.UUID
    developer_id: uuid.UUID
    client_id: uuid.UUID


class ProposalShortlisted(EventPayload, frozen=True):
    event_type: ClassVar[str] = "proposal.shortlisted"
    proposal_id: uuid.UUID
    project_id: uuid.UUID
    developer_id: uuid.UUID


class ProposalDeclined(EventPayload, frozen=True):
    event_type: ClassVar[str] = "proposal.declined"
    proposal_id: uuid.UUID
    project_id: uuid.UUID
    developer_id: uuid.UUID
    message: str


class ProposalWithdrawn(EventPayload, frozen=True):
    event_type: ClassVar[str] = "proposal.withdrawn"
    proposal_id: uuid.UUID
    project_id: uuid.UUID
    developer_id: uuid.UUID


class ProposalAccepted(EventPayload, frozen=True):
    event_type: ClassVar[str] = "proposal.accepted"
    proposal_id: uuid.UUID
    project_id: uuid.UUID
    developer_id: uuid.UUID
    client_id: uuid.UUID
    contract_id: uuid.UUID
