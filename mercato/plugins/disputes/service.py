"""Disputes: opening one freezes a milestone's escrow; both parties add evidence; the other
party must respond within ``response_days`` or the opener wins by default; otherwise an admin
splits the escrow between the developer and a refund to the client.

The money moves through :class:`~mercato.core.contracts.milestones.MilestoneService`
(``freeze`` and ``settle_dispute``), in the transaction that changes the dispute, with the
same lock order as every other milestone change: contract, milestone, then the dispute row.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, ClassVar

import msgspec
from litestar.exceptions import NotFoundException, PermissionDeniedException
from sqlalchemy import or_, select

from mercato.core.accounts.models import User
from mercato.core.contracts.activity import ContractFiles, record
from mercato.core.contracts.milestones import Locked, MilestoneService
from mercato.core.contracts.models import Contract, ContractActivity
from mercato.core.db import utcnow
from mercato.core.events import Event, EventPayload, emit
from mercato.core.moderation.audit import record as audit
from mercato.core.pagination import newest_first
from mercato.core.states import InvalidTransition
from mercato.core.timers import TimerHandler, cancel, schedule

from .models import Dispute, DisputeStatus, Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site
    from mercato.core.timers.models import Timer

PLUGIN_ID = "disputes"
RESPONSE_DUE = "dispute.response_due"
MAX_TEXT = 5_000


class DisputeSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.disputes]``."""

    response_days: Annotated[int, msgspec.Meta(ge=1, le=60)] = 5
    """Days the other party has to respond before the opener wins by default."""


class DisputeOpened(EventPayload, frozen=True):
    event_type: ClassVar[str] = "dispute.opened"
    dispute_id: uuid.UUID
    contract_id: uuid.UUID
    milestone_id: uuid.UUID
    opened_by: uuid.UUID
    respondent_id: uuid.UUID
    reason: str
    amount: int
    currency: str
    respond_by: str
    """ISO 8601: when the opener wins unless the other party responds."""


class DisputeEvidenceAdded(EventPayload, frozen=True):
    event_type: ClassVar[str] = "dispute.evidence_added"
    dispute_id: uuid.UUID
    contract_id: uuid.UUID
    author_id: uuid.UUID
    files: int


class DisputeResolved(EventPayload, frozen=True):
    event_type: ClassVar[str] = "dispute.resolved"
    dispute_id: uuid.UUID
    contract_id: uuid.UUID
    milestone_id: uuid.UUID
    outcome: str
    """``split`` (an admin decided) or ``default`` (no response in time)."""
    developer_amount: int
    refunded: int
    currency: str


EVIDENCE = DisputeEvidenceAdded.event_type


class DisputeService:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.milestones = MilestoneService(site)

    @property
    def settings(self) -> DisputeSettings:
        found = self.site.plugin_settings(PLUGIN_ID)
        return found if isinstance(found, DisputeSettings) else DisputeSettings()

    # -- reading -------------------------------------------------------------------------
    async def visible(self, session: AsyncSession, dispute_id: uuid.UUID, user_id: uuid.UUID) -> Dispute:
        """The dispute if ``user_id`` is one of its parties or an admin; 404 otherwise."""
        dispute = await session.get(Dispute, dispute_id)
        if dispute is None or not (self._party(dispute, user_id) or await is_admin(session, user_id)):
            raise NotFoundException("No such dispute.")
        return dispute

    @staticmethod
    def _party(dispute: Dispute, user_id: uuid.UUID) -> bool:
        return user_id in (dispute.opened_by, dispute.respondent_id)

    async def evidence(self, session: AsyncSession, dispute: Dispute) -> list[ContractActivity]:
        """The dispute's steps on the contract's timeline (opening, evidence, settling), oldest first."""
        rows = await session.scalars(
            select(ContractActivity)
            .where(
                ContractActivity.contract_id == dispute.contract_id,
                ContractActivity.milestone_id == dispute.milestone_id,
            )
            .order_by(ContractActivity.created_at, ContractActivity.id)
        )
        return [row for row in rows if row.data.get("dispute_id") == str(dispute.id)]

    async def page(
        self,
        session: AsyncSession,
        user_id: uuid.UUID | None,
        *,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Dispute], str | None]:
        """Disputes newest first: ``user_id``'s own, or (None) everyone's, for administrators."""
        query = select(Dispute)
        if user_id is not None:
            query = query.where(or_(Dispute.opened_by == user_id, Dispute.respondent_id == user_id))
        if status:
            query = query.where(Dispute.status == status)
        page, next_cursor = await newest_first(
            session, query, moment=Dispute.created_at, row_id=Dispute.id, cursor=cursor, limit=limit
        )
        return page, next_cursor

    # -- changing ------------------------------------------------------------------------
    async def open(
        self, session: AsyncSession, milestone_id: uuid.UUID, user_id: uuid.UUID, reason: str
    ) -> Dispute:
        """Either party disputes a funded or submitted milestone (409 otherwise)."""
        dispute_id = uuid.uuid4()
        locked = await self.milestones.freeze(
            session, milestone_id, user_id, reason=reason, dispute_id=dispute_id
        )
        contract, milestone = locked.contract, locked.milestone
        respondent = contract.developer_id if user_id == contract.client_id else contract.client_id
        respond_by = utcnow() + timedelta(days=self.settings.response_days)
        dispute = Dispute(
            id=dispute_id,
            contract_id=contract.id,
            milestone_id=milestone.id,
            opened_by=user_id,
            respondent_id=respondent,
            reason=reason[:MAX_TEXT],
            amount=milestone.in_escrow,
            currency=contract.currency,
            respond_by=respond_by,
            status=DisputeStatus.OPEN,
        )
        session.add(dispute)
        await session.flush()
        await schedule(session, RESPONSE_DUE, str(dispute.id), respond_by)
        emit(
            session,
            Event.of(
                DisputeOpened(
                    dispute_id=dispute.id,
                    contract_id=contract.id,
                    milestone_id=milestone.id,
                    opened_by=user_id,
                    respondent_id=respondent,
                    reason=dispute.reason,
                    amount=dispute.amount,
                    currency=dispute.currency,
                    respond_by=respond_by.isoformat(),
                ),
                actor_id=user_id,
            ),
        )
        return dispute

    async def _lock(self, session: AsyncSession, dispute_id: uuid.UUID, user_id: uuid.UUID | None) -> Dispute:
        """The dispute locked after its contract and milestone (404 unless ``user_id`` may see it)."""
        found = await session.get(Dispute, dispute_id)
        if found is None:
            raise NotFoundException("No such dispute.")
        if user_id is not None:
            await self.visible(session, dispute_id, user_id)
        await self.milestones.lock(session, found.milestone_id, None)
        return (
            await session.scalars(
                select(Dispute)
                .where(Dispute.id == dispute_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()

    async def add_evidence(
        self,
        session: AsyncSession,
        dispute_id: uuid.UUID,
        user_id: uuid.UUID,
        message: str,
        files: Sequence[uuid.UUID] = (),
    ) -> ContractActivity:
        """A party adds a message and files; the other party's first evidence is their response."""
        dispute = await self._lock(session, dispute_id, user_id)
        if not self._party(dispute, user_id):
            raise PermissionDeniedException("Only the dispute's parties add evidence.")
        if dispute.status != DisputeStatus.OPEN:
            raise InvalidTransition("This dispute is resolved.")
        if not message.strip() and not files:
            raise InvalidTransition("Add a message or a file.")
        step = record(
            session,
            dispute.contract_id,
            EVIDENCE,
            milestone_id=dispute.milestone_id,
            actor_id=user_id,
            message=message[:MAX_TEXT],
            data={"dispute_id": str(dispute.id)},
        )
        await ContractFiles(self.site).attach(session, dispute.contract_id, user_id, files, step)
        if user_id == dispute.respondent_id and dispute.responded_at is None:
            dispute.responded_at = utcnow()
            await cancel(session, RESPONSE_DUE, str(dispute.id))
        emit(
            session,
            Event.of(
                DisputeEvidenceAdded(
                    dispute_id=dispute.id,
                    contract_id=dispute.contract_id,
                    author_id=user_id,
                    files=len(files),
                ),
                actor_id=user_id,
            ),
        )
        return step

    async def resolve(
        self,
        session: AsyncSession,
        dispute_id: uuid.UUID,
        admin_id: uuid.UUID | None,
        developer_amount: int,
        note: str,
        outcome: Outcome = Outcome.SPLIT,
    ) -> Locked:
        """Split the frozen escrow: ``developer_amount`` to the developer, the rest back to the
        client. ``admin_id`` None: the response window decided. The refund's reference is in
        the result (send it once committed)."""
        dispute = await self._lock(session, dispute_id, None)
        if dispute.status != DisputeStatus.OPEN:
            raise InvalidTransition("This dispute is resolved already.")
        if not 0 <= developer_amount <= dispute.amount:
            raise InvalidTransition(
                f"Give the developer between 0 and {dispute.amount} minor units: "
                "that is what the dispute froze."
            )
        locked = await self.milestones.settle_dispute(
            session, dispute.milestone_id, developer_amount, admin_id, note=note, dispute_id=dispute.id
        )
        dispute.status = DisputeStatus.RESOLVED
        dispute.outcome = outcome
        dispute.developer_amount = developer_amount
        dispute.resolution_note = note[:MAX_TEXT]
        dispute.resolved_by = admin_id
        dispute.resolved_at = utcnow()
        if admin_id is not None:
            audit(session, admin_id, "dispute.resolve", "dispute", dispute.id, reason=note,
                   data={"developer_amount": developer_amount, "amount": dispute.amount,
                         "currency": dispute.currency})
        await cancel(session, RESPONSE_DUE, str(dispute.id))
        emit(
            session,
            Event.of(
                DisputeResolved(
                    dispute_id=dispute.id,
                    contract_id=dispute.contract_id,
                    milestone_id=dispute.milestone_id,
                    outcome=outcome,
                    developer_amount=developer_amount,
                    refunded=dispute.amount - developer_amount,
                    currency=dispute.currency,
                ),
                actor_id=admin_id,
            ),
        )
        return locked

    async def _response_due(self, session: AsyncSession, timer: Timer) -> None:
        dispute = await session.get(Dispute, uuid.UUID(timer.ref))
        if dispute is None or dispute.status != DisputeStatus.OPEN or dispute.responded_at is not None:
            return
        contract = await session.get(Contract, dispute.contract_id)
        assert contract is not None
        to_developer = dispute.amount if dispute.opened_by == contract.developer_id else 0
        await self.resolve(  # a refund it begins is sent by the sweeper once committed
            session,
            dispute.id,
            None,
            to_developer,
            "The other party did not respond in time, so the dispute was decided for the party who "
            "opened it.",
            Outcome.DEFAULT,
        )

    def timer_handlers(self) -> list[TimerHandler]:
        return [TimerHandler(RESPONSE_DUE, self._response_due)]


async def is_admin(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(User.is_admin).where(User.id == user_id)))
