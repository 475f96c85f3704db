"""Creating contracts and reading them. The only place that changes these tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.exceptions import NotFoundException
from sqlalchemy import or_, select

from mercato.core.contracts import events, schemas
from mercato.core.contracts.activity import record
from mercato.core.contracts.models import Contract, Milestone
from mercato.core.events import Event, emit
from mercato.core.pagination import newest_first

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class MilestonePlan:
    """A milestone as agreed before the contract exists."""

    title: str
    amount: int
    description: str = ""
    due_days: int | None = None


def milestone_out(m: Milestone, currency: str) -> schemas.MilestoneOut:
    return schemas.MilestoneOut(
        id=m.id, contract_id=m.contract_id, position=m.position, title=m.title, description=m.description,
        amount=m.amount, currency=currency, due_days=m.due_days, status=m.status, released=m.released,
        refunded=m.refunded, in_escrow=m.in_escrow,
        client_fee=m.client_fee, funded_at=m.funded_at, submitted_at=m.submitted_at,
        approved_at=m.approved_at, proposed_by=m.proposed_by,
    )


class ContractService:
    """Contracts of one site."""

    async def create(
        self,
        session: AsyncSession,
        *,
        client_id: uuid.UUID,
        developer_id: uuid.UUID,
        origin_type: str,
        origin_id: uuid.UUID,
        title: str,
        currency: str,
        milestones: list[MilestonePlan],
        hourly: bool = False,
    ) -> Contract:
        """A contract in ``pending_funding`` with its milestones; emits ``contract.created``.
        One contract per origin (a unique constraint backs the callers' own checks)."""
        if not milestones or any(m.amount <= 0 for m in milestones):
            raise ValueError("a contract needs milestones with positive amounts")
        contract = Contract(
            client_id=client_id,
            developer_id=developer_id,
            origin_type=origin_type,
            origin_id=origin_id,
            title=title[:200],
            currency=currency,
            total=sum(m.amount for m in milestones),
            hourly=hourly,
        )
        session.add(contract)
        await session.flush()
        for position, plan in enumerate(milestones):
            session.add(
                Milestone(
                    contract_id=contract.id,
                    position=position,
                    title=plan.title[:200],
                    description=plan.description,
                    amount=plan.amount,
                    due_days=plan.due_days,
                )
            )
        emit(
            session,
            Event.of(
                events.ContractCreated(
                    contract_id=contract.id,
                    client_id=client_id,
                    developer_id=developer_id,
                    origin_type=origin_type,
                    origin_id=origin_id,
                    currency=currency,
                    total=contract.total,
                ),
                actor_id=client_id,
            ),
        )
        record(session, contract.id, events.ContractCreated.event_type, actor_id=client_id,
               amount=contract.total)
        return contract

    async def get(self, session: AsyncSession, contract_id: uuid.UUID) -> Contract:
        """The contract (404 when there is none); callers check who may see it."""
        contract = await session.get(Contract, contract_id)
        if contract is None:
            raise NotFoundException("No such contract.")
        return contract

    async def party_contract(
        self, session: AsyncSession, contract_id: uuid.UUID, user_id: uuid.UUID
    ) -> Contract:
        """``contract_id`` if ``user_id`` is a party to it; 404 otherwise."""
        contract = await session.get(Contract, contract_id)
        if contract is None or user_id not in (contract.client_id, contract.developer_id):
            raise NotFoundException("No such contract.")
        return contract

    async def out(self, session: AsyncSession, contract: Contract) -> schemas.ContractOut:
        rows = (
            await session.execute(
                select(Milestone).where(Milestone.contract_id == contract.id).order_by(Milestone.position)
            )
        ).scalars()
        return schemas.ContractOut(
            id=contract.id,
            client_id=contract.client_id,
            developer_id=contract.developer_id,
            origin_type=contract.origin_type,
            origin_id=contract.origin_id,
            title=contract.title,
            currency=contract.currency,
            total=contract.total,
            hourly=contract.hourly,
            status=contract.status,
            created_at=contract.created_at,
            ended_at=contract.ended_at,
            milestones=[milestone_out(m, contract.currency) for m in rows],
        )

    async def list_for(
        self, session: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> schemas.ContractPage:
        query = select(Contract).where(or_(Contract.client_id == user_id, Contract.developer_id == user_id))
        page, next_cursor = await newest_first(
            session, query, moment=Contract.created_at, row_id=Contract.id, cursor=cursor, limit=limit
        )
        return schemas.ContractPage(items=[await self.out(session, c) for c in page], next_cursor=next_cursor)
