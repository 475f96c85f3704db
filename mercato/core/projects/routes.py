"""The projects and proposals API. Thin: rules live in the services; every object is
checked against the person asking (someone else's draft or proposal is a 404)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.routes import current_user, require_principal
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.projects import schemas
from mercato.core.projects.proposals import ProposalService
from mercato.core.projects.services import ProjectService
from mercato.core.site import Site

AnyRequest = Request[Any, Any, Any]
ProposalSort = Literal["submitted", "newest", "price", "duration", "skill_match"]
Slugs = Annotated[list[str] | None, QueryParameter(max_items=20)]


class ProjectsController(Controller):
    path = "/api/v1/projects"
    tags = ["projects"]

    @get("/", summary="Open public projects, newest first")
    async def list_projects(
        self,
        request: AnyRequest,
        site: NamedDependency[Site],
        category: Slugs = None,
        skill: Slugs = None,
        budget_type: FromQuery[Literal["fixed", "hourly"] | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.ProjectPage:
        principal = principal_of(request)
        async with site.db.reading() as session:
            return await ProjectService(site).browse(
                session,
                viewer=principal.user_id if principal else None,
                categories=category or [],
                skills=skill or [],
                budget_type=budget_type,
                limit=limit,
                cursor=cursor,
            )

    @post("/", summary="Post a project (published at once unless `publish` is false)")
    async def create_project(
        self, request: AnyRequest, data: JSONBody[schemas.ProjectIn], site: NamedDependency[Site]
    ) -> schemas.ProjectOut:
        service = ProjectService(site)
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            project = await service.create(session, client, data)
            return await service.out(session, project, client.id)

    @get("/mine", summary="Projects you posted")
    async def my_projects(self, request: AnyRequest, site: NamedDependency[Site]) -> list[schemas.ProjectOut]:
        principal = require_principal(request)
        service = ProjectService(site)
        async with site.db.reading() as session:
            return [
                await service.out(session, p, principal.user_id)
                for p in await service.mine(session, principal.user_id)
            ]

    @get("/{project_id:uuid}", summary="A project")
    async def get_project(
        self, request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ProjectOut:
        principal = principal_of(request)
        viewer = principal.user_id if principal else None
        service = ProjectService(site)
        async with site.db.reading() as session:
            return await service.out(session, await service.visible(session, project_id, viewer), viewer)

    @patch("/{project_id:uuid}", summary="Edit your project (draft or open)")
    async def update_project(
        self,
        request: AnyRequest,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ProjectUpdate],
        site: NamedDependency[Site],
    ) -> schemas.ProjectOut:
        service = ProjectService(site)
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            project = await service.owned(session, project_id, client.id)
            await service.update(session, project, data)
            return await service.out(session, project, client.id)

    @post("/{project_id:uuid}/publish", status_code=200, summary="Open a draft for proposals")
    async def publish_project(
        self, request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ProjectOut:
        service = ProjectService(site)
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            project = await service.owned(session, project_id, client.id, lock=True)
            await service.publish(session, client, project)
            return await service.out(session, project, client.id)

    @post("/{project_id:uuid}/close", status_code=200, summary="Close an open project without hiring")
    async def close_project(
        self, request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ProjectOut:
        return await self._end(request, project_id, site, "closed")

    @post("/{project_id:uuid}/cancel", status_code=200, summary="Cancel a draft or open project")
    async def cancel_project(
        self, request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ProjectOut:
        return await self._end(request, project_id, site, "cancelled")

    async def _end(
        self, request: AnyRequest, project_id: uuid.UUID, site: Site, target: str
    ) -> schemas.ProjectOut:
        from mercato.core.projects.models import ProjectStatus

        service = ProjectService(site)
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            project = await service.owned(session, project_id, client.id, lock=True)
            await service.close(session, project, target=ProjectStatus(target))
            return await service.out(session, project, client.id)

    @post("/{project_id:uuid}/invites", status_code=204, summary="Invite a developer to bid")
    async def invite(
        self,
        request: AnyRequest,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.InviteIn],
        site: NamedDependency[Site],
    ) -> None:
        service = ProjectService(site)
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            await service.invite(session, await service.owned(session, project_id, client.id), data)

    @get(
        "/{project_id:uuid}/proposals", summary="Proposals: all of them for the client, yours for a developer"
    )
    async def list_proposals(
        self,
        request: AnyRequest,
        project_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
        status: FromQuery[
            Literal["submitted", "shortlisted", "accepted", "declined", "withdrawn"] | None
        ] = None,
        sort: FromQuery[ProposalSort] = "submitted",
    ) -> list[schemas.ProposalOut]:
        principal = require_principal(request)
        service = ProposalService(site)
        async with site.db.reading() as session:
            project = await service.projects.visible(session, project_id, principal.user_id)
            return await service.for_project(session, project, principal.user_id, status=status, sort=sort)

    @post("/{project_id:uuid}/proposals", summary="Bid on an open project")
    async def submit_proposal(
        self,
        request: AnyRequest,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ProposalIn],
        site: NamedDependency[Site],
    ) -> schemas.ProposalOut:
        service = ProposalService(site)
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            proposal = await service.submit(session, developer, project_id, data)
            return await service.out(session, proposal)


class ProposalsController(Controller):
    path = "/api/v1/proposals"
    tags = ["proposals"]

    @get("/mine", summary="Your proposals, newest first")
    async def my_proposals(
        self, request: AnyRequest, site: NamedDependency[Site]
    ) -> list[schemas.ProposalOut]:
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await ProposalService(site).mine(session, principal.user_id)

    @get("/{proposal_id:uuid}", summary="A proposal (its developer and the project's client only)")
    async def get_proposal(
        self, request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ProposalOut:
        principal = require_principal(request)
        service = ProposalService(site)
        async with site.db.reading() as session:
            return await service.out(session, await service.visible(session, proposal_id, principal.user_id))

    @patch("/{proposal_id:uuid}", summary="Edit your proposal (until it is shortlisted)")
    async def edit_proposal(
        self,
        request: AnyRequest,
        proposal_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ProposalUpdate],
        site: NamedDependency[Site],
    ) -> schemas.ProposalOut:
        service = ProposalService(site)
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            return await service.out(session, await service.edit(session, developer, proposal_id, data))

    @post("/{proposal_id:uuid}/withdraw", status_code=200, summary="Withdraw your proposal")
    async def withdraw(
        self, request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ProposalOut:
        service = ProposalService(site)
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            return await service.out(session, await service.withdraw(session, developer, proposal_id))

    @post("/{proposal_id:uuid}/shortlist", status_code=200, summary="Shortlist a proposal on your project")
    async def shortlist(
        self, request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ProposalOut:
        service = ProposalService(site)
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            return await service.out(session, await service.shortlist(session, client, proposal_id))

    @post("/{proposal_id:uuid}/decline", status_code=200, summary="Decline a proposal on your project")
    async def decline(
        self,
        request: AnyRequest,
        proposal_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
        data: JSONBody[schemas.DeclineIn | None] = None,
    ) -> schemas.ProposalOut:
        service = ProposalService(site)
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            proposal = await service.decline(session, client, proposal_id, data.message if data else "")
            return await service.out(session, proposal)

    @post(
        "/{proposal_id:uuid}/accept",
        status_code=200,
        summary="Hire: accept a proposal, creating a contract and declining the others",
    )
    async def accept(
        self, request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.AcceptOut:
        service = ProposalService(site)
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            contract = await service.accept(session, client, proposal_id)
            proposal = await service.visible(session, proposal_id, client.id)
            return schemas.AcceptOut(proposal=await service.out(session, proposal), contract_id=contract.id)


class InvitationsController(Controller):
    path = "/api/v1/me/invitations"
    tags = ["projects"]

    @get("/", summary="Open projects you were invited to bid on")
    async def invitations(self, request: AnyRequest, site: NamedDependency[Site]) -> list[schemas.ProjectOut]:
        principal = require_principal(request)
        service = ProjectService(site)
        async with site.db.reading() as session:
            return [
                await service.out(session, p, principal.user_id)
                for p in await service.invitations(session, principal.user_id)
            ]


API_CONTROLLERS = [ProjectsController, ProposalsController, InvitationsController]
