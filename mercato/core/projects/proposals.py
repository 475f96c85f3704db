"""Business rules of proposals: bidding, editing, withdrawing, shortlisting, declining and
accepting (which hires the developer through a contract, all in one transaction)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotFoundException, PermissionDeniedException
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mercato.core.accounts.models import Profile, User, UserSkill
from mercato.core.accounts.services import AccountService
from mercato.core.contracts.models import Contract, ContractStatus
from mercato.core.contracts.services import ContractService, MilestonePlan
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import Event, emit
from mercato.core.markdown import render_markdown
from mercato.core.projects import events, schemas
from mercato.core.projects.attachments import attachments_of
from mercato.core.projects.models import (
    LIVE_PROPOSALS,
    PROPOSAL_TRANSITIONS,
    Project,
    ProjectStatus,
    Proposal,
    ProposalStatus,
)
from mercato.core.projects.services import InvalidTransition, ProjectService, check_transition
from mercato.core.reputation.models import reputation_of
from mercato.core.reputation.schemas import ReputationOut

HOURS_PER_FIRST_WEEK = 40
"""An hourly hire without a plan starts with one milestone of this many hours."""

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site


async def decline_live_proposals(
    session: AsyncSession, project: Project, *, message: str, keep: uuid.UUID | None = None
) -> None:
    """Decline every live proposal of ``project`` except ``keep`` (emits one event each)."""
    rows = (
        (
            await session.execute(
                select(Proposal).where(Proposal.project_id == project.id, Proposal.status.in_(LIVE_PROPOSALS))
            )
        )
        .scalars()
        .all()
    )
    for proposal in rows:
        if proposal.id == keep:
            continue
        proposal.status = ProposalStatus.DECLINED
        proposal.decline_message = message
        emit(
            session,
            Event.of(
                events.ProposalDeclined(
                    proposal_id=proposal.id,
                    project_id=project.id,
                    developer_id=proposal.developer_id,
                    message=message,
                ),
                actor_id=project.client_id,
            ),
        )
    project.proposal_count = 1 if keep is not None else 0


class ProposalService:
    """Proposals of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.projects = ProjectService(site)
        self.accounts = AccountService(site)

    # -- who may see what ------------------------------------------------------------
    async def visible(self, session: AsyncSession, proposal_id: uuid.UUID, user_id: uuid.UUID) -> Proposal:
        """The proposal for its developer and the project's client; 404 for anyone else."""
        proposal = await session.get(Proposal, proposal_id)
        if proposal is not None:
            if proposal.developer_id == user_id:
                return proposal
            project = await session.get(Project, proposal.project_id)
            if project is not None and project.client_id == user_id:
                return proposal
        raise NotFoundException("No such proposal.")

    async def _for_client(
        self, session: AsyncSession, proposal_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Proposal, Project]:
        """Every change of a proposal locks its project row first, then reads the proposal
        again: one lock order for every writer (no deadlocks), and no lost updates."""
        proposal = await self.visible(session, proposal_id, user_id)
        project = await self.projects.owned(session, proposal.project_id, user_id, lock=True)
        await session.refresh(proposal)
        return proposal, project

    async def _lock_project(self, session: AsyncSession, project_id: uuid.UUID) -> Project:
        query = (
            select(Project)
            .where(Project.id == project_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await session.execute(query)).scalar_one()

    async def _for_developer(
        self, session: AsyncSession, proposal_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Proposal, Project]:
        proposal = await self.visible(session, proposal_id, user_id)
        if proposal.developer_id != user_id:
            raise PermissionDeniedException("Only the developer who made this proposal can do that.")
        project = await self._lock_project(session, proposal.project_id)
        await session.refresh(proposal)
        return proposal, project

    async def editable(self, session: AsyncSession, developer: User, proposal_id: uuid.UUID) -> Proposal:
        """The developer's own proposal, locked as for an edit, while it can still change (until
        the client shortlists it): 404 for strangers, 403 for the client, 409 after that."""
        proposal, _ = await self._for_developer(session, proposal_id, developer.id)
        if proposal.status != ProposalStatus.SUBMITTED:
            raise InvalidTransition(f"This proposal is {proposal.status}; it can no longer be edited.")
        return proposal

    # -- bidding -------------------------------------------------------------------
    def _check_terms(
        self,
        project: Project,
        *,
        amount: int,
        currency: str,
        milestones: list[schemas.MilestoneIn],
        answers: list[str],
    ) -> tuple[list[dict[str, Any]], list[str]]:
        if currency != project.currency:
            raise field_error("currency", f"This project's budget is in {project.currency}; bid in it too.")
        if amount > project.budget_max * 10:
            raise field_error("amount", "This is more than ten times the client's budget; check the amount.")
        plan: list[dict[str, Any]] = []
        if milestones:
            if project.budget_type == "hourly":
                raise field_error(
                    "milestones", "Hourly projects are billed by the hour, without a milestone plan."
                )
            if sum(m.amount for m in milestones) != amount:
                raise field_error("milestones", "The milestones must add up to the total price.")
            plan = [{"title": " ".join(m.title.split()), "amount": m.amount} for m in milestones]
        cleaned = [a.strip() for a in answers]
        questions = list(project.screening_questions)
        if len(cleaned) != len(questions) or any(not a for a in cleaned):
            raise field_error(
                "answers",
                f"Answer each of the client's {len(questions)} questions."
                if questions
                else "This project asks no questions; send no answers.",
            )
        return plan, cleaned

    async def submit(
        self, session: AsyncSession, developer: User, project_id: uuid.UUID, body: schemas.ProposalIn
    ) -> Proposal:
        await self.projects.visible(session, project_id, developer.id)
        project = await self._lock_project(session, project_id)  # a hire may be committing right now
        if project.client_id == developer.id:
            raise PermissionDeniedException("You cannot bid on your own project.")
        if not developer.is_developer:
            raise PermissionDeniedException("Bidding needs the developer role: turn it on in your profile.")
        self.accounts.require_verified(developer)
        if project.status != ProjectStatus.OPEN:
            raise InvalidTransition(f"This project is {project.status}; it takes no proposals.")
        plan, answers = self._check_terms(
            project,
            amount=body.amount,
            currency=body.currency,
            milestones=body.milestones,
            answers=body.answers,
        )
        existing = (
            await session.execute(
                select(Proposal).where(
                    Proposal.project_id == project.id, Proposal.developer_id == developer.id
                )
            )
        ).scalar_one_or_none()
        if existing is not None:
            if existing.status != ProposalStatus.WITHDRAWN:
                raise InvalidTransition("You already made a proposal on this project; edit it instead.")
            proposal = existing
            proposal.decline_message = ""
        else:
            proposal = Proposal(project_id=project.id, developer_id=developer.id)
            session.add(proposal)
        proposal.cover_letter, proposal.amount, proposal.currency = (
            body.cover_letter.strip(),
            body.amount,
            body.currency,
        )
        proposal.duration_days, proposal.milestones, proposal.answers = body.duration_days, plan, answers
        proposal.status, proposal.submitted_at = ProposalStatus.SUBMITTED, utcnow()
        try:
            await session.flush()
        except IntegrityError:  # the same developer bid twice at the same moment
            raise InvalidTransition("You already made a proposal on this project; edit it instead.") from None
        await _count_live(session, project, +1)
        emit(
            session,
            Event.of(
                events.ProposalSubmitted(
                    proposal_id=proposal.id,
                    project_id=project.id,
                    developer_id=developer.id,
                    client_id=project.client_id,
                ),
                actor_id=developer.id,
            ),
        )
        return proposal

    async def edit(
        self, session: AsyncSession, developer: User, proposal_id: uuid.UUID, body: schemas.ProposalUpdate
    ) -> Proposal:
        proposal, project = await self._for_developer(session, proposal_id, developer.id)
        if proposal.status != ProposalStatus.SUBMITTED:
            raise InvalidTransition(f"This proposal is {proposal.status}; it can no longer be edited.")
        amount = body.amount if body.amount is not None else proposal.amount
        milestones = (
            body.milestones
            if body.milestones is not None
            else [schemas.MilestoneIn(title=m["title"], amount=m["amount"]) for m in proposal.milestones]
        )
        if body.amount is not None and body.milestones is None and proposal.milestones:
            milestones = []  # a new price without a new plan: one milestone
        plan, answers = self._check_terms(
            project,
            amount=amount,
            currency=proposal.currency,
            milestones=milestones,
            answers=body.answers if body.answers is not None else proposal.answers,
        )
        if body.cover_letter is not None:
            proposal.cover_letter = body.cover_letter.strip()
        if body.duration_days is not None:
            proposal.duration_days = body.duration_days
        proposal.amount, proposal.milestones, proposal.answers = amount, plan, answers
        proposal.updated_at = utcnow()
        return proposal

    async def withdraw(self, session: AsyncSession, developer: User, proposal_id: uuid.UUID) -> Proposal:
        proposal, project = await self._for_developer(session, proposal_id, developer.id)
        check_transition(proposal.status, ProposalStatus.WITHDRAWN, PROPOSAL_TRANSITIONS, "proposal")
        proposal.status = ProposalStatus.WITHDRAWN
        await _count_live(session, project, -1)
        emit(
            session,
            Event.of(
                events.ProposalWithdrawn(
                    proposal_id=proposal.id, project_id=project.id, developer_id=developer.id
                ),
                actor_id=developer.id,
            ),
        )
        return proposal

    # -- the client's decisions ----------------------------------------------------------
    async def shortlist(self, session: AsyncSession, client: User, proposal_id: uuid.UUID) -> Proposal:
        proposal, project = await self._for_client(session, proposal_id, client.id)
        if project.status != ProjectStatus.OPEN:
            raise InvalidTransition(f"This project is {project.status}.")
        check_transition(proposal.status, ProposalStatus.SHORTLISTED, PROPOSAL_TRANSITIONS, "proposal")
        proposal.status = ProposalStatus.SHORTLISTED
        emit(
            session,
            Event.of(
                events.ProposalShortlisted(
                    proposal_id=proposal.id, project_id=project.id, developer_id=proposal.developer_id
                ),
                actor_id=client.id,
            ),
        )
        return proposal

    async def decline(
        self, session: AsyncSession, client: User, proposal_id: uuid.UUID, message: str
    ) -> Proposal:
        proposal, project = await self._for_client(session, proposal_id, client.id)
        check_transition(proposal.status, ProposalStatus.DECLINED, PROPOSAL_TRANSITIONS, "proposal")
        proposal.status = ProposalStatus.DECLINED
        proposal.decline_message = message.strip()
        await _count_live(session, project, -1)
        emit(
            session,
            Event.of(
                events.ProposalDeclined(
                    proposal_id=proposal.id,
                    project_id=project.id,
                    developer_id=proposal.developer_id,
                    message=proposal.decline_message,
                ),
                actor_id=client.id,
            ),
        )
        return proposal

    async def accept(self, session: AsyncSession, client: User, proposal_id: uuid.UUID) -> Contract:
        """Hire: the proposal is accepted, a contract made from it, the project ``hired`` and
        every other live proposal declined - one transaction. The project row is locked first
        (PostgreSQL; SQLite has one writer), so two acceptances race to exactly one contract."""
        proposal, project = await self._for_client(session, proposal_id, client.id)
        if project.status != ProjectStatus.OPEN:
            raise InvalidTransition(f"This project is {project.status}; nobody more can be hired.")
        check_transition(proposal.status, ProposalStatus.ACCEPTED, PROPOSAL_TRANSITIONS, "proposal")
        plan = [MilestonePlan(title=m["title"], amount=m["amount"]) for m in proposal.milestones]
        hourly = project.budget_type == "hourly"
        if not plan:
            # An hourly hire starts with a first week of 40 hours at the agreed rate.
            amount = proposal.amount * HOURS_PER_FIRST_WEEK if hourly else proposal.amount
            title = f"First week ({HOURS_PER_FIRST_WEEK} hours)" if hourly else project.title
            plan = [MilestonePlan(title=title, amount=amount)]
        contract = await ContractService().create(
            session,
            client_id=client.id,
            developer_id=proposal.developer_id,
            origin_type="proposal",
            origin_id=proposal.id,
            title=project.title,
            currency=proposal.currency,
            milestones=plan,
            hourly=hourly,
        )
        proposal.status = ProposalStatus.ACCEPTED
        proposal.contract_id = contract.id
        check_transition(
            project.status, ProjectStatus.HIRED, {ProjectStatus.OPEN: frozenset({"hired"})}, "project"
        )
        project.status = ProjectStatus.HIRED
        project.hired_at = utcnow()
        await decline_live_proposals(
            session, project, keep=proposal.id, message="The client hired another developer for this project."
        )
        emit(
            session,
            Event.of(
                events.ProposalAccepted(
                    proposal_id=proposal.id,
                    project_id=project.id,
                    developer_id=proposal.developer_id,
                    client_id=client.id,
                    contract_id=contract.id,
                ),
                actor_id=client.id,
            ),
        )
        emit(
            session,
            Event.of(
                events.ProjectHired(
                    project_id=project.id,
                    proposal_id=proposal.id,
                    developer_id=proposal.developer_id,
                    contract_id=contract.id,
                ),
                actor_id=client.id,
            ),
        )
        assert contract.status == ContractStatus.PENDING_FUNDING
        return contract

    # -- reading -----------------------------------------------------------------------
    async def out(
        self, session: AsyncSession, proposal: Proposal, project: Project | None = None
    ) -> schemas.ProposalOut:
        project = project or await session.get(Project, proposal.project_id)
        assert project is not None
        developer = await session.get(User, proposal.developer_id)
        profile = await session.get(Profile, proposal.developer_id)
        skills = list(
            (
                await session.execute(
                    select(UserSkill.skill_slug)
                    .where(UserSkill.user_id == proposal.developer_id)
                    .order_by(UserSkill.position)
                )
            ).scalars()
        )
        wanted = set(project.skills)
        reputation = (await reputation_of(session, [proposal.developer_id])).get(proposal.developer_id)
        completed = (
            await session.execute(
                select(Contract.id).where(
                    Contract.developer_id == proposal.developer_id,
                    Contract.status == ContractStatus.COMPLETED,
                )
            )
        ).all()
        return schemas.ProposalOut(
            id=proposal.id,
            project_id=project.id,
            project_title=project.title,
            developer=schemas.DeveloperSummary(
                id=proposal.developer_id,
                display_name=developer.display_name if developer else "Deleted user",
                headline=profile.headline if profile else "",
                skills=skills,
                hourly_rate=profile.hourly_rate if profile else None,
                completed_jobs=len(completed),
                rating=reputation.rating_avg if reputation else None,
                reputation=ReputationOut.of(reputation),
            ),
            cover_letter=proposal.cover_letter,
            cover_letter_html=str(render_markdown(proposal.cover_letter)),
            amount=proposal.amount,
            currency=proposal.currency,
            hourly=project.budget_type == "hourly",
            duration_days=proposal.duration_days,
            milestones=[
                schemas.MilestoneOut(title=m["title"], amount=m["amount"]) for m in proposal.milestones
            ],
            answers=list(proposal.answers),
            status=proposal.status,
            decline_message=proposal.decline_message,
            skill_match=round(len(wanted & set(skills)) / len(wanted), 2) if wanted else 1.0,
            submitted_at=proposal.submitted_at,
            contract_id=proposal.contract_id,
            attachments=(await attachments_of(session, "proposal", [proposal.id])).get(proposal.id, []),
        )

    async def for_project(
        self, session: AsyncSession, project: Project, viewer: uuid.UUID, *, status: str | None, sort: str
    ) -> list[schemas.ProposalOut]:
        """The owner sees every proposal; a developer only their own."""
        query = select(Proposal).where(Proposal.project_id == project.id)
        if viewer != project.client_id:
            query = query.where(Proposal.developer_id == viewer)
        if status:
            query = query.where(Proposal.status == status)
        rows = [await self.out(session, p, project) for p in (await session.execute(query)).scalars()]
        keys = {
            "price": lambda p: (p.amount, p.submitted_at),
            "newest": lambda p: (-p.submitted_at.timestamp(),),
            "duration": lambda p: (p.duration_days, p.amount),
            "skill_match": lambda p: (-p.skill_match, p.amount),
            "rating": lambda p: (-(p.developer.rating or 0), -(p.developer.reputation.rating_count
                                                               if p.developer.reputation else 0), p.amount),
            "submitted": lambda p: (p.submitted_at,),
        }
        return sorted(rows, key=keys.get(sort, keys["submitted"]))  # type: ignore[arg-type]

    async def mine(self, session: AsyncSession, developer_id: uuid.UUID) -> list[schemas.ProposalOut]:
        rows = (
            await session.execute(
                select(Proposal)
                .where(Proposal.developer_id == developer_id)
                .order_by(Proposal.submitted_at.desc())
            )
        ).scalars()
        return [await self.out(session, p) for p in rows]


async def _count_live(session: AsyncSession, project: Project, change: int) -> None:
    """Move the project's count of live proposals (in SQL, so concurrent bids add up)."""
    await session.execute(
        update(Project).where(Project.id == project.id).values(proposal_count=Project.proposal_count + change)
    )
