"""Contracts and milestones: each party sees its own, anyone else gets a 404."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from mercato.core.accounts.routes import require_principal
from mercato.core.contracts import schemas
from mercato.core.contracts.activity import ContractFiles, file_out, timeline
from mercato.core.contracts.milestones import MilestoneService
from mercato.core.contracts.models import Milestone
from mercato.core.contracts.services import ContractService, milestone_out
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.payments.idempotency import idempotent
from mercato.core.projects.routes import DOWNLOAD, UPLOAD_PROBLEMS, Upload, problems
from mercato.core.site import Site

log = structlog.get_logger("mercato.payments")


class ContractsController(Controller):
    path = "/api/v1/contracts"
    tags = ["contracts"]

    @get("/", summary="Your contracts, newest first")
    async def list_contracts(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.ContractPage:
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await ContractService().list_for(session, principal.user_id, limit=limit, cursor=cursor)

    @get("/{contract_id:uuid}", summary="One of your contracts, with its milestones")
    async def get_contract(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ContractOut:
        principal = require_principal(request)
        service = ContractService()
        async with site.db.reading() as session:
            contract = await service.party_contract(session, contract_id, principal.user_id)
            return await service.out(session, contract)

    @get("/{contract_id:uuid}/activity", summary="A contract's timeline, newest first")
    async def activity(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], site: NamedDependency[Site],
        limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    ) -> schemas.ActivityPage:
        """Every step: milestones proposed, funded, submitted (with the note and files), changes
        asked for, money released, disputes."""
        principal = require_principal(request)
        async with site.db.reading() as session:
            await ContractService().party_contract(session, contract_id, principal.user_id)
            return await timeline(session, contract_id, limit=limit, cursor=cursor)

    @post("/{contract_id:uuid}/milestones", status_code=201, summary="Propose one more milestone")
    async def propose(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.MilestoneIn], site: NamedDependency[Site],
    ) -> schemas.MilestoneOut:
        """Either party proposes; the milestone is ``proposed`` until the other accepts it
        (``POST /api/v1/milestones/{id}/accept``) or either cancels it."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            locked = await MilestoneService(site).propose(
                session, contract_id, principal.user_id, title=data.title, amount=data.amount,
                description=data.description, due_days=data.due_days,
            )
            return milestone_out(locked.milestone, locked.contract.currency)

    @post("/{contract_id:uuid}/complete", status_code=200, summary="Close a contract (milestones settled)")
    async def complete(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ContractOut:
        """Either party; every milestone must be approved or cancelled (409 says which is not)."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            contract = await MilestoneService(site).complete(session, contract_id, principal.user_id)
            return await ContractService().out(session, contract)

    @post("/{contract_id:uuid}/cancel", status_code=200, summary="End a contract early")
    async def cancel(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ContractOut:
        """Either party, while no money is on its way or in escrow (409 otherwise); milestones not
        yet funded are cancelled with it."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            contract = await MilestoneService(site).end(session, contract_id, principal.user_id)
            return await ContractService().out(session, contract)

    @post("/{contract_id:uuid}/files", status_code=201, summary="Upload a deliverable or evidence file",
          responses=UPLOAD_PROBLEMS)
    async def upload(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], data: Upload,
        site: NamedDependency[Site],
    ) -> schemas.ContractFileOut:
        """The file is yours alone until you hand it over: list its id in ``files`` when you
        submit a milestone (or add dispute evidence)."""
        principal = require_principal(request)
        async with site.db.reading() as session:
            await ContractService().party_contract(session, contract_id, principal.user_id)
        row = await ContractFiles(site).upload(contract_id, principal.user_id, data.file.filename or "",
                                               await data.file.read())
        return file_out(row)

    @get("/{contract_id:uuid}/files/{file_id:uuid}", summary="Download a contract's file",
         responses={200: DOWNLOAD, **problems(_404="No such contract or file (or you may not see it)")})
    async def download(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], file_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> Response[bytes]:
        principal = require_principal(request)
        files = ContractFiles(site)
        async with site.db.reading() as session:
            await ContractService().party_contract(session, contract_id, principal.user_id)
            row = await files.get(session, contract_id, file_id, principal.user_id)
            return await files.download(row)

    @delete("/{contract_id:uuid}/files/{file_id:uuid}", status_code=204,
            summary="Remove a file you uploaded and have not handed over")
    async def remove_file(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], file_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> None:
        principal = require_principal(request)
        async with site.db.reading() as session:
            await ContractService().party_contract(session, contract_id, principal.user_id)
        await ContractFiles(site).remove(contract_id, file_id, principal.user_id)


class MilestonesController(Controller):
    """Moving a milestone along: each action is for one party, 404 for anyone else, 409 when
    the milestone's state does not allow it."""

    path = "/api/v1/milestones"
    tags = ["milestones"]

    @post("/{milestone_id:uuid}/fund", status_code=200, middleware=[idempotent],
          summary="Pay a milestone into escrow (client)",
          responses={402: ResponseSpec(None, description="The gateway declined the payment")})
    async def fund(self, request: Request[Any, Any, Any], milestone_id: FromPath[uuid.UUID],
                   data: JSONBody[schemas.FundIn], site: NamedDependency[Site]) -> schemas.MilestoneOut:
        """Answers with the milestone ``funded``, or ``funding`` while the gateway has not yet
        confirmed (its webhook settles it). A declined payment is a 402 and leaves the milestone
        ``pending``."""
        principal = require_principal(request)
        await MilestoneService(site).fund(milestone_id, principal.user_id, data.payment_method, data.gateway)
        return await _milestone(site, milestone_id, principal.user_id)

    @post("/{milestone_id:uuid}/submit", status_code=200, summary="Hand in the work (developer)")
    async def submit(self, request: Request[Any, Any, Any], milestone_id: FromPath[uuid.UUID],
                     data: JSONBody[schemas.SubmitIn], site: NamedDependency[Site]) -> schemas.MilestoneOut:
        """The client then approves or asks for changes; without an answer the milestone is
        approved after ``[payments] auto_approve_days``."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await MilestoneService(site).submit(session, milestone_id, principal.user_id, data.note,
                                                data.files)
        return await _milestone(site, milestone_id, principal.user_id)

    @post("/{milestone_id:uuid}/accept", status_code=200, summary="Accept a proposed milestone")
    async def accept(self, request: Request[Any, Any, Any], milestone_id: FromPath[uuid.UUID],
                     site: NamedDependency[Site]) -> schemas.MilestoneOut:
        """It becomes ``pending`` (the client funds it next) and joins the contract's total. To
        decline a proposed milestone, cancel it."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await MilestoneService(site).accept(session, milestone_id, principal.user_id)
        return await _milestone(site, milestone_id, principal.user_id)

    @post("/{milestone_id:uuid}/request-changes", status_code=200, summary="Send the work back (client)")
    async def request_changes(
        self, request: Request[Any, Any, Any], milestone_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ChangesIn], site: NamedDependency[Site],
    ) -> schemas.MilestoneOut:
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await MilestoneService(site).request_changes(
                session, milestone_id, principal.user_id, data.message
            )
        return await _milestone(site, milestone_id, principal.user_id)

    @post("/{milestone_id:uuid}/approve", status_code=200, middleware=[idempotent],
          summary="Approve and pay the rest (client)")
    async def approve(self, request: Request[Any, Any, Any], milestone_id: FromPath[uuid.UUID],
                      site: NamedDependency[Site]) -> schemas.MilestoneOut:
        """Releases what is left in escrow to the developer, less the platform's fee."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await MilestoneService(site).release(session, milestone_id, principal.user_id)
        return await _milestone(site, milestone_id, principal.user_id)

    @post("/{milestone_id:uuid}/release", status_code=200, middleware=[idempotent],
          summary="Pay part of the escrow now (client)")
    async def release(self, request: Request[Any, Any, Any], milestone_id: FromPath[uuid.UUID],
                      data: JSONBody[schemas.ReleaseIn], site: NamedDependency[Site]) -> schemas.MilestoneOut:
        """Releasing all that is left approves the milestone."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await MilestoneService(site).release(session, milestone_id, principal.user_id, data.amount)
        return await _milestone(site, milestone_id, principal.user_id)

    @post("/{milestone_id:uuid}/cancel", status_code=200, middleware=[idempotent],
          summary="Cancel a milestone")
    async def cancel(self, request: Request[Any, Any, Any], milestone_id: FromPath[uuid.UUID],
                     site: NamedDependency[Site]) -> schemas.MilestoneOut:
        """Either party cancels a milestone before it is funded. A funded one only the developer
        cancels; its escrow goes back to the client."""
        principal = require_principal(request)
        await MilestoneService(site).cancel_now(milestone_id, principal.user_id)
        return await _milestone(site, milestone_id, principal.user_id)


async def _milestone(site: Site, milestone_id: uuid.UUID, user_id: uuid.UUID) -> schemas.MilestoneOut:
    async with site.db.reading() as session:
        milestone = await session.get(Milestone, milestone_id)
        if milestone is None:
            raise NotFoundException("No such milestone.")
        contract = await ContractService().party_contract(session, milestone.contract_id, user_id)
        return milestone_out(milestone, contract.currency)
