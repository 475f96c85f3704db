"""The projects and proposals API. Thin: rules live in the services; every object is
checked against the person asking (someone else's draft or proposal is a 404)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter

from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.routes import current_user, require_principal
from mercato.core.errors import PROBLEM_JSON
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.projects import schemas
from mercato.core.projects.attachments import AttachmentService, LoadOwner, attachment_out
from mercato.core.projects.proposals import ProposalService
from mercato.core.projects.services import ProjectService
from mercato.core.site import Site

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.accounts.models import User
    from mercato.core.projects.models import Project, Proposal

AnyRequest = Request[Any, Any, Any]
ProposalSort = Literal["submitted", "newest", "price", "duration", "skill_match", "rating"]
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


# ---------------------------------------------------------------------------
# Attachments
# ---------------------------------------------------------------------------


@dataclass
class AttachmentUpload:
    """A multipart form with one file."""

    file: UploadFile
    """PDF, PNG, JPEG, WebP, GIF, TXT, Markdown, ZIP, DOCX, XLSX or PPTX; the type is checked
    from the content and must match the extension."""


Upload = Annotated[AttachmentUpload, Body(media_type=RequestEncodingType.MULTI_PART)]


def owned_project(request: AnyRequest, site: Site, project_id: uuid.UUID) -> LoadOwner:
    """Loads the person asking and their project (403 when they may only see it, 404 otherwise)."""

    async def load(session: AsyncSession, lock: bool) -> tuple[User, Project]:
        client = await current_user(request, session, site)
        return client, await ProjectService(site).owned(session, project_id, client.id, lock=lock)

    return load


def editable_proposal(request: AnyRequest, site: Site, proposal_id: uuid.UUID) -> LoadOwner:
    """Loads the person asking and their proposal while it can change (``ProposalService.editable``:
    403, 404 or 409; it always locks the project)."""

    async def load(session: AsyncSession, lock: bool) -> tuple[User, Proposal]:
        developer = await current_user(request, session, site)
        return developer, await ProposalService(site).editable(session, developer, proposal_id)

    return load


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem detail (``errors`` names the fields that are wrong)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


def problems(**described: str) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem details a route answers with (``_404="..."``)."""
    return {
        int(code.lstrip("_")): ResponseSpec(
            data_container=Problem, media_type=PROBLEM_JSON, description=text, generate_examples=False
        )
        for code, text in described.items()
    }


DOWNLOAD = ResponseSpec(
    data_container=bytes,
    media_type="application/octet-stream",
    description="The file, as a download (`Content-Disposition: attachment`); `Content-Type` is the "
    "type detected when it was uploaded.",
    generate_examples=False,
)
UPLOAD_PROBLEMS = problems(
    _400="Empty file, a type that cannot be attached, content that does not match the extension, "
    "or too many files (10 at most)",
    _403="Someone else's project or proposal",
    _404="No such project, proposal or file (or you may not see it)",
    _409="The project or proposal can no longer change",
    _413="The file is larger than `[uploads] max_attachment_bytes`",
)


class ProjectAttachmentsController(Controller):
    path = "/api/v1/projects/{project_id:uuid}/attachments"
    tags = ["projects"]

    @post(
        "/",
        summary="Attach a file to your project (draft or open)",
        responses=UPLOAD_PROBLEMS,
    )
    async def add(
        self, request: AnyRequest, project_id: FromPath[uuid.UUID], data: Upload, site: NamedDependency[Site]
    ) -> schemas.AttachmentOut:
        files, load = AttachmentService(site), owned_project(request, site, project_id)
        return attachment_out(await files.add(data.file, load, check_in=site.db.reading))

    @get(
        "/{attachment_id:uuid}",
        summary="Download a project's file (anyone who can see the project)",
        responses={200: DOWNLOAD, **problems(_404="No such project or file (or you may not see it)")},
    )
    async def download(
        self,
        request: AnyRequest,
        project_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> Response[bytes]:
        principal = principal_of(request)
        files = AttachmentService(site)
        async with site.db.reading() as session:
            viewer = principal.user_id if principal else None
            project = await ProjectService(site).visible(session, project_id, viewer)
            row = await files.get(session, "project", project.id, attachment_id)
            return await files.download(row)

    @delete(
        "/{attachment_id:uuid}",
        status_code=204,
        summary="Remove a file from your project (draft or open)",
        responses=problems(
            _403="Someone else's project",
            _404="No such project or file",
            _409="The project can no longer change",
        ),
    )
    async def remove(
        self,
        request: AnyRequest,
        project_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> None:
        await AttachmentService(site).remove(owned_project(request, site, project_id), attachment_id)


class ProposalAttachmentsController(Controller):
    path = "/api/v1/proposals/{proposal_id:uuid}/attachments"
    tags = ["proposals"]

    @post(
        "/",
        summary="Attach a file to your proposal (until it is shortlisted)",
        responses=UPLOAD_PROBLEMS,
    )
    async def add(
        self, request: AnyRequest, proposal_id: FromPath[uuid.UUID], data: Upload, site: NamedDependency[Site]
    ) -> schemas.AttachmentOut:
        files, load = AttachmentService(site), editable_proposal(request, site, proposal_id)
        # editable() locks the project, so even the early check takes a (write) transaction
        return attachment_out(await files.add(data.file, load, check_in=site.db.transaction))

    @get(
        "/{attachment_id:uuid}",
        summary="Download a proposal's file (its developer and the project's client only)",
        responses={200: DOWNLOAD, **problems(_404="No such proposal or file (or you may not see it)")},
    )
    async def download(
        self,
        request: AnyRequest,
        proposal_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> Response[bytes]:
        principal = principal_of(request)
        if principal is None:  # a proposal is private: nothing to tell strangers, not even "log in"
            raise NotFoundException("No such proposal.")
        files = AttachmentService(site)
        async with site.db.reading() as session:
            proposal = await ProposalService(site).visible(session, proposal_id, principal.user_id)
            row = await files.get(session, "proposal", proposal.id, attachment_id)
            return await files.download(row)

    @delete(
        "/{attachment_id:uuid}",
        status_code=204,
        summary="Remove a file from your proposal (until it is shortlisted)",
        responses=problems(
            _403="The project's client (only the developer changes a proposal)",
            _404="No such proposal or file",
            _409="The proposal can no longer change",
        ),
    )
    async def remove(
        self,
        request: AnyRequest,
        proposal_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> None:
        await AttachmentService(site).remove(editable_proposal(request, site, proposal_id), attachment_id)


API_CONTROLLERS = [
    ProjectsController,
    ProposalsController,
    InvitationsController,
    ProjectAttachmentsController,
    ProposalAttachmentsController,
]
