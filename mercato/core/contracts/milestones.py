"""Milestones and their money: funding through a gateway, submitting work, asking for changes,
releasing (in part or on approval), cancelling with a refund, and the timers that approve
silent submissions and end payout holds.

**Locks.** Every change locks the contract row, then the milestone row, then (when a payment is
involved) the payment row, in that order, before reading their state: the same order for
every writer, so two requests never wait on each other in a circle, and the second of two
racing requests sees what the first did. Ledger postings come last (the ledger locks its
accounts in its own order, after these rows).

**Money.** Each movement is one :meth:`~mercato.core.ledger.services.Ledger.post` in the
transaction that changes the milestone, with a key derived from the state it changes, so a
retried request can never move money twice:

* funding, when the gateway confirms the charge: gateway clearing → escrow (the milestone) and
  platform revenue (the client fee);
* release: escrow → the developer's *pending* balance, less the fee, which goes to platform
  revenue; a timer moves it to *available* after ``payout_hold_days``;
* cancelling a funded milestone: escrow (and the client fee's share) → the client's funding
  balance, from which the gateway refund pays it back.

Funding talks to a gateway, which must not happen inside a database transaction: the
milestone becomes ``funding`` with a pending payment (committed), the gateway is asked, and
its answer is settled in a second transaction (:meth:`MilestoneService.settle_charge`). A
webhook or a retry that brings the same answer again changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from litestar.exceptions import NotFoundException, PermissionDeniedException
from sqlalchemy import select

from mercato.core.contracts import events
from mercato.core.contracts.activity import ContractFiles, record
from mercato.core.contracts.models import (
    IN_ESCROW,
    Contract,
    ContractActivity,
    ContractStatus,
    Milestone,
    MilestoneStatus,
)
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import Event, emit
from mercato.core.ledger.models import Purpose
from mercato.core.ledger.services import Account, Ledger, Leg
from mercato.core.payments.checks import ask_gateway, schedule_check
from mercato.core.payments.fees import FeeContext, checked_fee
from mercato.core.payments.gateways import ChargeRequest, GatewayError, Outcome, UnknownGateway
from mercato.core.payments.models import Payment, PaymentKind, PaymentStatus
from mercato.core.payments.refunds import Refunds
from mercato.core.states import InvalidTransition, check_transition
from mercato.core.timers import TimerHandler, cancel, schedule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.settings import PaymentsSettings
    from mercato.core.site import Site
    from mercato.core.timers.models import Timer

M = MilestoneStatus
log = structlog.get_logger("mercato.payments")

MILESTONE_TRANSITIONS: dict[str, frozenset[str]] = {
    M.PROPOSED: frozenset({M.PENDING, M.CANCELLED}),
    M.PENDING: frozenset({M.FUNDING, M.CANCELLED}),
    M.FUNDING: frozenset({M.FUNDED, M.PENDING}),
    M.FUNDED: frozenset({M.SUBMITTED, M.APPROVED, M.CANCELLED, M.DISPUTED}),
    M.SUBMITTED: frozenset({M.CHANGES_REQUESTED, M.APPROVED, M.DISPUTED}),
    M.CHANGES_REQUESTED: frozenset({M.SUBMITTED, M.APPROVED, M.DISPUTED}),
    M.DISPUTED: frozenset({M.APPROVED, M.CANCELLED}),
}
"""Where each milestone state may go (``approved`` and ``cancelled`` are final)."""

C = ContractStatus
CONTRACT_TRANSITIONS: dict[str, frozenset[str]] = {
    C.PENDING_FUNDING: frozenset({C.ACTIVE, C.CANCELLED}),
    C.ACTIVE: frozenset({C.COMPLETED, C.CANCELLED, C.DISPUTED}),
    C.DISPUTED: frozenset({C.ACTIVE}),
}
"""Where each contract state may go (``completed`` and ``cancelled`` are final)."""

SETTLED = frozenset({M.APPROVED, M.CANCELLED})
MAX_MILESTONES = 50

AUTO_APPROVE = "milestone.auto_approve"
AUTO_APPROVE_SOON = "milestone.auto_approve_soon"
REMIND_DAYS_BEFORE = 2
"""How long before an automatic approval the client is reminded."""
HOLD_END = "ledger.hold_end"
CHARGE_CHECK = "payment.charge_check"
MAX_NOTE = 5_000


@dataclass(frozen=True, slots=True)
class Locked:
    contract: Contract
    milestone: Milestone
    refund: str | None = None
    """The reference of a refund this change began (send it to the gateway after commit)."""


class PaymentFailed(InvalidTransition):
    """402: the gateway refused the payment; the message says why, in words for the payer."""

    status_code = 402


class MilestoneService:
    """Milestones of one site: the only code that changes their state or their money."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.ledger = Ledger()

    @property
    def settings(self) -> PaymentsSettings:
        """Read at each use: admins change holds and auto-approval while the site runs, and
        timer handlers keep one service for the process's life."""
        return self.site.settings.payments

    # -- finding and locking -----------------------------------------------------------
    async def lock_contract(self, session: AsyncSession, contract_id: uuid.UUID,
                            user_id: uuid.UUID) -> Contract:
        """The contract, locked; 404 unless ``user_id`` is a party (checked before the lock)."""
        found = (await session.execute(
            select(Contract.client_id, Contract.developer_id).where(Contract.id == contract_id)
        )).first()
        if found is None or user_id not in (found.client_id, found.developer_id):
            raise NotFoundException("No such contract.")
        return (await session.scalars(
            select(Contract).where(Contract.id == contract_id)
            .with_for_update().execution_options(populate_existing=True)
        )).one()

    async def lock(self, session: AsyncSession, milestone_id: uuid.UUID, user_id: uuid.UUID | None) -> Locked:
        """The milestone and its contract, locked (contract first). 404 unless ``user_id`` is a
        party (``None``: the system, for timers and webhooks)."""
        # Parties are checked before any lock: a stranger never holds someone else's rows.
        found = (await session.execute(
            select(Contract.id, Contract.client_id, Contract.developer_id)
            .join(Milestone, Milestone.contract_id == Contract.id).where(Milestone.id == milestone_id)
        )).first()
        if found is None or (user_id is not None and user_id not in (found.client_id, found.developer_id)):
            raise NotFoundException("No such milestone.")
        contract = (await session.scalars(
            select(Contract).where(Contract.id == found.id)
            .with_for_update().execution_options(populate_existing=True)
        )).one()
        milestone = (await session.scalars(
            select(Milestone).where(Milestone.id == milestone_id)
            .with_for_update().execution_options(populate_existing=True)
        )).one()
        return Locked(contract, milestone)

    @staticmethod
    def _only(locked: Locked, user_id: uuid.UUID | None, role: str) -> None:
        wanted = locked.contract.client_id if role == "client" else locked.contract.developer_id
        if user_id is not None and user_id != wanted:
            raise PermissionDeniedException(f"Only the contract's {role} can do that.")

    @staticmethod
    def _open(locked: Locked | Contract) -> None:
        contract = locked.contract if isinstance(locked, Locked) else locked
        if contract.status not in (ContractStatus.PENDING_FUNDING, ContractStatus.ACTIVE):
            raise InvalidTransition(f"This contract is {contract.status.replace('_', ' ')}.")

    def _event(self, locked: Locked, payload_type: type[Any], actor_id: uuid.UUID | None,
               session: AsyncSession, **extra: Any) -> ContractActivity:
        """Emit the milestone's event and put the step on the contract's timeline."""
        milestone, contract = locked.milestone, locked.contract
        amount = extra.pop("amount", milestone.amount)
        emit(session, Event.of(payload_type(
            milestone_id=milestone.id, contract_id=contract.id, client_id=contract.client_id,
            developer_id=contract.developer_id, amount=amount, currency=contract.currency, **extra,
        ), actor_id=actor_id))
        message = next((extra.pop(name) for name in ("note", "message", "reason") if name in extra), "")
        data = {name: str(value) if isinstance(value, uuid.UUID) else value for name, value in extra.items()}
        return record(session, contract.id, payload_type.event_type, milestone_id=milestone.id,
                      actor_id=actor_id, message=message, amount=amount, data=data)

    def _contract_event(self, session: AsyncSession, contract: Contract, payload_type: type[Any],
                        actor_id: uuid.UUID | None, paid: int) -> None:
        emit(session, Event.of(payload_type(
            contract_id=contract.id, client_id=contract.client_id, developer_id=contract.developer_id,
            currency=contract.currency, paid=paid,
        ), actor_id=actor_id))
        record(session, contract.id, payload_type.event_type, actor_id=actor_id, amount=paid)

    def _fee_context(self, locked: Locked, amount: int) -> FeeContext:
        contract = locked.contract
        return FeeContext(amount=amount, currency=contract.currency, contract_id=contract.id,
                          client_id=contract.client_id, developer_id=contract.developer_id)

    # -- funding -----------------------------------------------------------------------
    async def begin_funding(
        self, session: AsyncSession, milestone_id: uuid.UUID, client_id: uuid.UUID, gateway_id: str
    ) -> Payment:
        """Make the milestone ``funding`` with a pending charge for its amount plus the client
        fee. Commit, then ask the gateway (``charge``), then :meth:`settle_charge`."""
        locked = await self.lock(session, milestone_id, client_id)
        self._only(locked, client_id, "client")
        self._open(locked)
        if locked.milestone.status == M.FUNDING:
            raise InvalidTransition("A payment for this milestone is already on its way.")
        check_transition(locked.milestone.status, M.FUNDING, MILESTONE_TRANSITIONS, "milestone")
        gateway = self.site.gateways.get(gateway_id)
        if locked.contract.currency not in gateway.currencies:
            raise InvalidTransition(f"{gateway.name} does not take {locked.contract.currency}.")
        policy = self.site.plugins.fee_policy(self.site)
        amount = locked.milestone.amount
        fee = checked_fee(policy.client_fee(self._fee_context(locked, amount)), amount, what="client fee")
        payment = Payment(
            id=uuid.uuid4(), reference=f"ch_{uuid.uuid4().hex}", kind=PaymentKind.CHARGE,
            gateway=gateway.id, status=PaymentStatus.PENDING, amount=amount + fee, fee=fee,
            currency=locked.contract.currency, user_id=client_id, contract_id=locked.contract.id,
            milestone_id=locked.milestone.id,
        )
        session.add(payment)
        locked.milestone.status = M.FUNDING
        await schedule_check(session, CHARGE_CHECK, payment.reference)
        await session.flush()
        return payment

    async def settle_charge(
        self, session: AsyncSession, reference: str, outcome: Outcome, *, gateway_ref: str = "",
        message: str = "",
    ) -> Payment | None:
        """Apply a gateway's answer about a charge (idempotent: a settled payment stays as it is;
        ``PENDING`` changes nothing). None when no such charge exists."""
        found = await session.scalar(select(Payment).where(Payment.reference == reference))
        if found is None or found.kind != PaymentKind.CHARGE or found.milestone_id is None:
            return None
        locked = await self.lock(session, found.milestone_id, None)
        payment = (await session.scalars(
            select(Payment).where(Payment.id == found.id)
            .with_for_update().execution_options(populate_existing=True)
        )).one()
        late = payment.status == PaymentStatus.FAILED and outcome == Outcome.SUCCEEDED
        if (payment.status != PaymentStatus.PENDING and not late) or outcome == Outcome.PENDING:
            if gateway_ref and not payment.gateway_id:
                payment.gateway_id = gateway_ref
            return payment
        payment.gateway_id = gateway_ref or payment.gateway_id
        milestone, contract = locked.milestone, locked.contract
        if outcome == Outcome.FAILED:
            payment.status = PaymentStatus.FAILED
            payment.message = message[:300] or "The payment was declined."
            if milestone.status == M.FUNDING:
                milestone.status = M.PENDING
                self._event(locked, events.MilestoneFundingFailed, None, session, message=payment.message)
            return payment
        payment.status = PaymentStatus.SUCCEEDED
        if late or milestone.status != M.FUNDING:
            # The gateway took the money after mercato had given the charge up (it never answered
            # in time): the milestone may since be funded another way, so the money goes to the
            # client's refund balance, never lost and never in escrow twice.
            payment.message = "Confirmed after it was given up; owed back to the client."
            owed = Account.user(contract.client_id, Purpose.CLIENT_FUNDING, payment.currency)
            await self.ledger.post(session, key=f"charge:{payment.reference}", kind="late_funding", legs=[
                Leg(Account.gateway(payment.gateway, payment.currency, by=contract.id), -payment.amount),
                Leg(owed, payment.amount),
            ], reference=self._reference(locked, payment=payment.id))
            log.warning("charge confirmed after it was given up", reference=payment.reference,
                        amount=payment.amount, currency=payment.currency)
            return payment
        escrowed = payment.amount - payment.fee
        legs = [Leg(Account.gateway(payment.gateway, payment.currency, by=contract.id), -payment.amount),
                Leg(Account.escrow(contract.id, payment.currency), escrowed)]
        if payment.fee:
            legs.append(Leg(Account.revenue(payment.currency, by=contract.id), payment.fee))
        await self.ledger.post(session, key=f"charge:{payment.reference}", kind="funding", legs=legs,
                               reference=self._reference(locked, payment=payment.id))
        milestone.status = M.FUNDED
        milestone.client_fee = payment.fee
        milestone.funded_at = utcnow()
        if contract.status == ContractStatus.PENDING_FUNDING:
            contract.status = ContractStatus.ACTIVE
        self._event(locked, events.MilestoneFunded, contract.client_id, session, client_fee=payment.fee)
        return payment

    async def fund(self, milestone_id: uuid.UUID, client_id: uuid.UUID, payment_method: str,
                   gateway_id: str | None = None) -> None:
        """The whole funding: :meth:`begin_funding` (committed), the gateway's charge, then
        :meth:`settle_charge`. Raises :class:`PaymentFailed` (402) when the gateway declines;
        returns with the milestone ``funded``, or ``funding`` while the gateway has not answered
        (its webhook or the check timer settles it)."""
        try:
            gateway = self.site.gateways.get(gateway_id or self.settings.default_gateway)
        except UnknownGateway as exc:
            raise field_error("gateway", str(exc)) from None
        async with self.site.db.transaction() as session:
            payment = await self.begin_funding(session, milestone_id, client_id, gateway.id)
            charge = ChargeRequest(reference=payment.reference, amount=payment.amount,
                                   currency=payment.currency, payment_method=payment_method,
                                   description=f"Milestone {milestone_id}")
        try:
            result = await gateway.charge(charge)
        except GatewayError as exc:  # unknown: the webhook or a later look settles it
            log.warning("charge outcome unknown", gateway=gateway.id, reference=charge.reference,
                        error=repr(exc))
            return
        async with self.site.db.transaction() as session:
            settled = await self.settle_charge(session, charge.reference, result.outcome,
                                               gateway_ref=result.gateway_id, message=result.message)
        if settled is not None and settled.status == PaymentStatus.FAILED:
            raise PaymentFailed(settled.message)

    # -- work ----------------------------------------------------------------------------
    async def submit(self, session: AsyncSession, milestone_id: uuid.UUID, developer_id: uuid.UUID,
                     note: str, files: Sequence[uuid.UUID] = ()) -> Locked:
        """Hand in the work with a note and deliverables uploaded before (``files``)."""
        locked = await self.lock(session, milestone_id, developer_id)
        self._only(locked, developer_id, "developer")
        self._open(locked)
        check_transition(locked.milestone.status, M.SUBMITTED, MILESTONE_TRANSITIONS, "milestone")
        now = utcnow()
        locked.milestone.status = M.SUBMITTED
        locked.milestone.submitted_at = now
        approve_at = now + timedelta(days=self.settings.auto_approve_days)
        await schedule(session, AUTO_APPROVE, str(milestone_id), approve_at)
        if self.settings.auto_approve_days > REMIND_DAYS_BEFORE:
            await schedule(session, AUTO_APPROVE_SOON, str(milestone_id),
                           approve_at - timedelta(days=REMIND_DAYS_BEFORE),
                           {"approve_at": approve_at.isoformat()})
        step = self._event(locked, events.MilestoneSubmitted, developer_id, session, note=note[:MAX_NOTE])
        await ContractFiles(self.site).attach(session, locked.contract.id, developer_id, files, step)
        return locked

    async def request_changes(self, session: AsyncSession, milestone_id: uuid.UUID, client_id: uuid.UUID,
                              message: str) -> Locked:
        locked = await self.lock(session, milestone_id, client_id)
        self._only(locked, client_id, "client")
        self._open(locked)
        check_transition(locked.milestone.status, M.CHANGES_REQUESTED, MILESTONE_TRANSITIONS, "milestone")
        locked.milestone.status = M.CHANGES_REQUESTED
        await cancel(session, AUTO_APPROVE, str(milestone_id))
        await cancel(session, AUTO_APPROVE_SOON, str(milestone_id))
        self._event(locked, events.MilestoneChangesRequested, client_id, session, message=message[:MAX_NOTE])
        return locked

    # -- releasing -----------------------------------------------------------------------
    async def release(self, session: AsyncSession, milestone_id: uuid.UUID, client_id: uuid.UUID | None,
                      amount: int | None = None) -> Locked:
        """Pay ``amount`` of the escrowed money to the developer (all of it, approving the
        milestone, when ``amount`` is None or the whole rest). ``client_id`` None: the
        system (auto-approval)."""
        locked = await self.lock(session, milestone_id, client_id)
        self._only(locked, client_id, "client")
        self._open(locked)
        milestone = locked.milestone
        if milestone.status == M.DISPUTED:
            raise InvalidTransition("This milestone is in dispute; its escrow is frozen until it is settled.")
        rest = milestone.in_escrow
        if amount is None or amount == rest:
            check_transition(milestone.status, M.APPROVED, MILESTONE_TRANSITIONS, "milestone")
            amount = rest
        elif milestone.status not in IN_ESCROW:
            raise InvalidTransition(f"This milestone is {milestone.status.replace('_', ' ')}; "
                                    "only money in escrow can be released.")
        elif not 0 < amount < rest:
            raise InvalidTransition(f"Release between 1 and {rest} minor units: that is what is in escrow.")
        await self._pay_developer(session, locked, amount, client_id)
        if milestone.released + milestone.refunded == milestone.amount:
            milestone.status = M.APPROVED
            milestone.approved_at = utcnow()
            await cancel(session, AUTO_APPROVE, str(milestone.id))
            self._event(locked, events.MilestoneApproved, client_id, session, automatic=client_id is None)
        return locked

    async def _pay_developer(self, session: AsyncSession, locked: Locked, amount: int,
                             actor_id: uuid.UUID | None) -> None:
        milestone, contract = locked.milestone, locked.contract
        policy = self.site.plugins.fee_policy(self.site)
        fee = checked_fee(policy.release_fee(self._fee_context(locked, amount)), amount, what="release fee")
        key = f"release:{milestone.id}:{milestone.released}:{amount}"
        developer = Account.user(contract.developer_id, Purpose.DEVELOPER_PENDING, contract.currency)
        legs = [Leg(Account.escrow(contract.id, contract.currency), -amount)]
        if amount - fee:
            legs.append(Leg(developer, amount - fee))
        if fee:
            legs.append(Leg(Account.revenue(contract.currency, by=contract.id), fee))
        await self.ledger.post(session, key=key, kind="release", legs=legs,
                               reference=self._reference(locked, fee=fee))
        milestone.released += amount
        available_at = utcnow() + timedelta(days=self.settings.payout_hold_days)
        if amount - fee:
            hold = {"user_id": str(contract.developer_id), "currency": contract.currency,
                    "amount": amount - fee}
            if self.settings.payout_hold_days:
                await schedule(session, HOLD_END, key, available_at, hold)
            else:
                await self._end_hold(session, key, hold)
        self._event(locked, events.PaymentReleased, actor_id, session, amount=amount, fee=fee,
                    available_at=available_at.isoformat())

    async def _end_hold(self, session: AsyncSession, release_key: str, hold: dict[str, Any]) -> None:
        user_id, currency, amount = uuid.UUID(hold["user_id"]), hold["currency"], int(hold["amount"])
        await self.ledger.post(session, key=f"hold:{release_key}", kind="hold_end", legs=[
            Leg(Account.user(user_id, Purpose.DEVELOPER_PENDING, currency), -amount),
            Leg(Account.user(user_id, Purpose.DEVELOPER_AVAILABLE, currency), amount),
        ], reference={"release": release_key})

    # -- cancelling ----------------------------------------------------------------------
    async def cancel(self, session: AsyncSession, milestone_id: uuid.UUID, user_id: uuid.UUID) -> Locked:
        """Either party cancels a milestone not yet funded. A funded one only the developer
        cancels (the client asks the developer, or opens a dispute); its escrow goes back to the
        client's refund balance with the client fee's share, and a refund of its charge begins
        (:attr:`Locked.refund`: send it once committed)."""
        locked = await self.lock(session, milestone_id, user_id)
        self._open(locked)
        milestone, contract = locked.milestone, locked.contract
        if milestone.status == M.FUNDING:
            raise InvalidTransition("A payment for this milestone is on its way; cancel once it has settled.")
        check_transition(milestone.status, M.CANCELLED, MILESTONE_TRANSITIONS, "milestone")
        refund = milestone.in_escrow
        if refund and user_id != contract.developer_id:
            raise PermissionDeniedException(
                "A funded milestone is cancelled by the developer, who then refunds you; "
                "ask them, or open a dispute."
            )
        if refund:
            locked = Locked(contract, milestone, await self._refund(session, locked, refund))
        milestone.status = M.CANCELLED
        await cancel(session, AUTO_APPROVE, str(milestone.id))
        self._event(locked, events.MilestoneCancelled, user_id, session, refunded=refund)
        return locked

    async def cancel_now(self, milestone_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """:meth:`cancel` in its own transaction, then send the refund it began."""
        async with self.site.db.transaction() as session:
            locked = await self.cancel(session, milestone_id, user_id)
        if locked.refund:
            await Refunds(self.site).send(locked.refund)

    async def _refund(self, session: AsyncSession, locked: Locked, refund: int) -> str | None:
        """Move ``refund`` of the milestone's escrow, with the client fee's share of it, to the
        client's refund balance, and begin the gateway refund; its reference (send it after
        commit). A milestone is refunded once: the step that does it ends the milestone."""
        milestone, contract = locked.milestone, locked.contract
        fee_share = milestone.client_fee * refund // milestone.amount
        legs = [Leg(Account.escrow(contract.id, contract.currency), -refund),
                Leg(Account.user(contract.client_id, Purpose.CLIENT_FUNDING, contract.currency),
                    refund + fee_share)]
        if fee_share:
            legs.append(Leg(Account.revenue(contract.currency, by=contract.id), -fee_share))
        await self.ledger.post(session, key=f"refund:{milestone.id}", kind="refund", legs=legs,
                               reference=self._reference(locked, fee=fee_share))
        milestone.refunded += refund
        payment = await Refunds(self.site).begin(
            session, client_id=contract.client_id, contract_id=contract.id, milestone_id=milestone.id,
            amount=refund + fee_share, currency=contract.currency,
        )
        return payment.reference if payment else None

    # -- disputes ------------------------------------------------------------------------
    async def freeze(self, session: AsyncSession, milestone_id: uuid.UUID, user_id: uuid.UUID, *,
                     reason: str, dispute_id: uuid.UUID) -> Locked:
        """A party disputes a funded or submitted milestone: its escrow is frozen (no release,
        no cancel, no auto-approval) and the contract is ``disputed`` until :meth:`settle_dispute`."""
        locked = await self.lock(session, milestone_id, user_id)
        self._open(locked)
        milestone, contract = locked.milestone, locked.contract
        check_transition(milestone.status, M.DISPUTED, MILESTONE_TRANSITIONS, "milestone")
        check_transition(contract.status, C.DISPUTED, CONTRACT_TRANSITIONS, "contract")
        milestone.status = M.DISPUTED
        contract.status = C.DISPUTED
        await cancel(session, AUTO_APPROVE, str(milestone.id))
        self._event(locked, events.MilestoneDisputed, user_id, session, amount=milestone.in_escrow,
                    reason=reason[:MAX_NOTE], dispute_id=dispute_id)
        return locked

    async def settle_dispute(self, session: AsyncSession, milestone_id: uuid.UUID, to_developer: int,
                             actor_id: uuid.UUID | None, *, note: str = "", dispute_id: uuid.UUID) -> Locked:
        """End a dispute: ``to_developer`` of the frozen escrow is released to the developer (less
        the fee, through the usual hold), the rest refunded to the client. The milestone is then
        ``approved`` (something was paid) or ``cancelled``, and the contract ``active`` again.
        ``actor_id``: the admin who decided, or None when the response window decided."""
        locked = await self.lock(session, milestone_id, None)
        milestone, contract = locked.milestone, locked.contract
        if milestone.status != M.DISPUTED:
            raise InvalidTransition("This milestone is not in dispute.")
        rest = milestone.in_escrow
        if not 0 <= to_developer <= rest:
            raise InvalidTransition(f"Split between 0 and {rest} minor units: that is what is in escrow.")
        if to_developer:
            await self._pay_developer(session, locked, to_developer, actor_id)
        refund = rest - to_developer
        reference = await self._refund(session, locked, refund) if refund else None
        if to_developer:
            milestone.status = M.APPROVED
            milestone.approved_at = utcnow()
        else:
            milestone.status = M.CANCELLED
        check_transition(contract.status, C.ACTIVE, CONTRACT_TRANSITIONS, "contract")
        contract.status = C.ACTIVE
        self._event(locked, events.MilestoneSettled, actor_id, session, amount=rest, released=to_developer,
                    refunded=refund, note=note[:MAX_NOTE], dispute_id=dispute_id)
        return Locked(contract, milestone, reference)

    # -- more milestones, and ending the contract -------------------------------------------
    async def propose(self, session: AsyncSession, contract_id: uuid.UUID, user_id: uuid.UUID, *, title: str,
                      amount: int, description: str = "", due_days: int | None = None) -> Locked:
        """Either party proposes one more milestone; it counts once the other accepts it."""
        contract = await self.lock_contract(session, contract_id, user_id)
        ours = list(await session.scalars(select(Milestone).where(Milestone.contract_id == contract_id)))
        self._open(contract)
        if len(ours) >= MAX_MILESTONES:
            raise InvalidTransition(f"A contract holds at most {MAX_MILESTONES} milestones.")
        milestone = Milestone(
            id=uuid.uuid4(), contract_id=contract.id,
            position=max(m.position for m in ours) + 1 if ours else 0,
            title=title[:200], description=description, amount=amount, due_days=due_days,
            status=M.PROPOSED, proposed_by=user_id, released=0, refunded=0, client_fee=0,
        )
        session.add(milestone)
        await session.flush()
        locked = Locked(contract, milestone)
        self._event(locked, events.MilestoneProposed, user_id, session, proposed_by=user_id,
                    title=milestone.title)
        return locked

    async def accept(self, session: AsyncSession, milestone_id: uuid.UUID, user_id: uuid.UUID) -> Locked:
        """The other party accepts a proposed milestone: it becomes ``pending`` (to be funded)
        and joins the contract's total."""
        locked = await self.lock(session, milestone_id, user_id)
        self._open(locked)
        milestone, contract = locked.milestone, locked.contract
        check_transition(milestone.status, M.PENDING, MILESTONE_TRANSITIONS, "milestone")
        if milestone.status != M.PROPOSED:
            raise InvalidTransition("Only a proposed milestone can be accepted.")
        if milestone.proposed_by == user_id:
            raise PermissionDeniedException("You proposed this milestone; the other party accepts it.")
        milestone.status = M.PENDING
        contract.total += milestone.amount
        self._event(locked, events.MilestoneAccepted, user_id, session, proposed_by=milestone.proposed_by,
                    title=milestone.title)
        return locked

    async def complete(self, session: AsyncSession, contract_id: uuid.UUID, user_id: uuid.UUID) -> Contract:
        """Either party closes a contract whose milestones are all settled (approved or
        cancelled), at least one of them paid."""
        contract = await self.lock_contract(session, contract_id, user_id)
        check_transition(contract.status, C.COMPLETED, CONTRACT_TRANSITIONS, "contract")
        ours = list(await session.scalars(
            select(Milestone).where(Milestone.contract_id == contract_id).order_by(Milestone.position)))
        for milestone in ours:
            if milestone.status not in SETTLED:
                raise InvalidTransition(
                    f"“{milestone.title}” is {milestone.status.replace('_', ' ')}; every milestone must be "
                    "approved or cancelled before the contract completes."
                )
        if not any(m.status == M.APPROVED for m in ours):
            raise InvalidTransition("No milestone was paid; cancel the contract instead.")
        contract.status = C.COMPLETED
        contract.ended_at = utcnow()
        paid = sum(m.released for m in ours)
        self._contract_event(session, contract, events.ContractCompleted, user_id, paid)
        return contract

    async def end(self, session: AsyncSession, contract_id: uuid.UUID, user_id: uuid.UUID) -> Contract:
        """Either party cancels the contract while no money is on its way or in escrow; its
        milestones not yet funded are cancelled with it."""
        contract = await self.lock_contract(session, contract_id, user_id)
        check_transition(contract.status, C.CANCELLED, CONTRACT_TRANSITIONS, "contract")
        ours = list(await session.scalars(
            select(Milestone).where(Milestone.contract_id == contract_id).order_by(Milestone.position)))
        for milestone in ours:
            if milestone.status not in SETTLED | {M.PENDING, M.PROPOSED}:
                raise InvalidTransition(
                    f"“{milestone.title}” is {milestone.status.replace('_', ' ')}: its money must be "
                    "released or refunded first (approve it, or the developer cancels it)."
                )
        for milestone in ours:
            if milestone.status in (M.PENDING, M.PROPOSED):
                milestone.status = M.CANCELLED
        contract.status = C.CANCELLED
        contract.ended_at = utcnow()
        paid = sum(m.released for m in ours)
        self._contract_event(session, contract, events.ContractCancelled, user_id, paid)
        return contract

    # -- timers ----------------------------------------------------------------------------
    async def _auto_approve(self, session: AsyncSession, timer: Timer) -> None:
        try:
            locked = await self.lock(session, uuid.UUID(timer.ref), None)
        except NotFoundException:
            return
        if locked.milestone.status != M.SUBMITTED:
            return  # answered, disputed or cancelled meanwhile
        if locked.contract.status == C.DISPUTED:  # another milestone's dispute: wait for its end
            await schedule(session, AUTO_APPROVE, timer.ref, max(utcnow(), timer.due_at) + timedelta(days=1))
            return
        if locked.contract.status != C.ACTIVE:
            return
        await self.release(session, locked.milestone.id, None)

    async def _remind(self, session: AsyncSession, timer: Timer) -> None:
        """Tell the client an automatic approval is near (if the milestone still waits)."""
        try:
            locked = await self.lock(session, uuid.UUID(timer.ref), None)
        except NotFoundException:
            return
        if locked.milestone.status == M.SUBMITTED and locked.contract.status == C.ACTIVE:
            self._event(locked, events.MilestoneAutoApproveSoon, None, session,
                        approve_at=str(timer.data.get("approve_at", "")))

    async def _check_charge(self, session: AsyncSession, timer: Timer) -> None:
        """A charge with no answer yet: the gateway never called back, or this process died
        between the gateway's answer and recording it."""
        await ask_gateway(self.site, session, timer, "charge", self.settle_charge)

    async def _hold_timer(self, session: AsyncSession, timer: Timer) -> None:
        await self._end_hold(session, timer.ref, timer.data)

    def timer_handlers(self) -> list[TimerHandler]:
        return [
            TimerHandler(AUTO_APPROVE, self._auto_approve),
            TimerHandler(AUTO_APPROVE_SOON, self._remind),
            TimerHandler(HOLD_END, self._hold_timer),
            TimerHandler(CHARGE_CHECK, self._check_charge),
        ]

    @staticmethod
    def _reference(locked: Locked, **extra: Any) -> dict[str, Any]:
        extra = {name: str(value) if isinstance(value, uuid.UUID) else value for name, value in extra.items()}
        return {"contract": str(locked.contract.id), "milestone": str(locked.milestone.id), **extra}
