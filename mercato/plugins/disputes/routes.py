"""The disputes API: parties open disputes and add evidence; admins list and resolve them.
Someone else's dispute is a 404."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy import select

from mercato.core.accounts.routes import require_principal
from mercato.core.contracts.activity import ContractFiles, file_out
from mercato.core.contracts.models import ContractFile
from mercato.core.contracts.schemas import ContractFileOut
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.payments.idempotency import idempotent
from mercato.core.payments.refunds import Refunds
from mercato.core.projects.routes import DOWNLOAD, problems
from mercato.core.site import Site

from .models import Dispute
from .service import MAX_TEXT, DisputeService, is_admin

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class DisputeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=10, max_length=MAX_TEXT)]
    """What went wrong, for the other party and the admin (10 characters or more)."""


class EvidenceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: Text = ""
    files: Annotated[list[uuid.UUID], msgspec.Meta(max_length=10)] = []
    """Files uploaded first with ``POST /api/v1/contracts/{id}/files``."""


class ResolveIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    developer_amount: Annotated[int, msgspec.Meta(ge=0)]
    """Minor units of the frozen escrow for the developer; the rest is refunded to the client."""
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
    """The decision's reasons, shown to both parties."""


class EvidenceOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    """``milestone.disputed`` (the opening), ``dispute.evidence_added`` or ``milestone.settled``."""
    author_id: uuid.UUID | None
    message: str
    created_at: datetime
    files: list[ContractFileOut]


class DisputeOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contract_id: uuid.UUID
    milestone_id: uuid.UUID
    opened_by: uuid.UUID
    respondent_id: uuid.UUID
    reason: str
    status: str
    """open or resolved."""
    amount: int
    """Minor units frozen in escrow."""
    currency: str
    respond_by: datetime
    """The opener wins by default unless the other party adds evidence before this."""
    responded_at: datetime | None
    outcome: str
    """split (an admin decided) or default (no response in time); empty while open."""
    developer_amount: int | None
    resolution_note: str
    resolved_at: datetime | None
    created_at: datetime
    evidence: list[EvidenceOut] = []


class DisputePage(msgspec.Struct, kw_only=True):
    items: list[DisputeOut]
    next_cursor: str | None


def dispute_out(dispute: Dispute, evidence: list[EvidenceOut] | None = None) -> DisputeOut:
    return DisputeOut(
        id=dispute.id,
        contract_id=dispute.contract_id,
        milestone_id=dispute.milestone_id,
        opened_by=dispute.opened_by,
        respondent_id=dispute.respondent_id,
        reason=dispute.reason,
        status=dispute.status,
        amount=dispute.amount,
        currency=dispute.currency,
        respond_by=dispute.respond_by,
        responded_at=dispute.responded_at,
        outcome=dispute.outcome,
        developer_amount=dispute.developer_amount,
        resolution_note=dispute.resolution_note,
        resolved_at=dispute.resolved_at,
        created_at=dispute.created_at,
        evidence=evidence or [],
    )


async def full_out(site: Site, session: Any, dispute: Dispute) -> DisputeOut:
    service = DisputeService(site)
    steps = await service.evidence(session, dispute)
    files: dict[uuid.UUID, list[ContractFileOut]] = {}
    if steps:
        rows = await session.scalars(
            select(ContractFile)
            .where(ContractFile.activity_id.in_([s.id for s in steps]))
            .order_by(ContractFile.created_at)
        )
        for row in rows:
            files.setdefault(row.activity_id, []).append(dispute_file_out(dispute, row))
    return dispute_out(
        dispute,
        [
            EvidenceOut(
                id=s.id,
                kind=s.kind,
                author_id=s.actor_id,
                message=s.message,
                created_at=s.created_at,
                files=files.get(s.id, []),
            )
            for s in steps
        ],
    )


def dispute_file_out(dispute: Dispute, row: ContractFile) -> ContractFileOut:
    """A file as the dispute shows it: served from the dispute, so an admin can read it too."""
    out = file_out(row)
    out.url = f"/api/v1/disputes/{dispute.id}/files/{row.id}"
    return out


Status = Annotated[str | None, QueryParameter(description="open or resolved", pattern="^(open|resolved)$")]


class DisputesController(Controller):
    path = "/api/v1"
    tags = ["disputes"]

    @post(
        "/milestones/{milestone_id:uuid}/dispute",
        status_code=201,
        summary="Dispute a funded or submitted milestone (either party)",
    )
    async def open_dispute(
        self,
        request: Request[Any, Any, Any],
        milestone_id: FromPath[uuid.UUID],
        data: JSONBody[DisputeIn],
        site: NamedDependency[Site],
    ) -> DisputeOut:
        """Freezes the milestone's escrow and puts the contract in ``disputed``. The other party
        must respond (add evidence) within ``[plugins.disputes] response_days``, or the dispute
        is decided for you."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            dispute = await DisputeService(site).open(session, milestone_id, principal.user_id, data.reason)
            return await full_out(site, session, dispute)

    @get("/disputes", summary="Disputes you are a party to, newest first")
    async def list_disputes(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        status: Status = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> DisputePage:
        principal = require_principal(request)
        async with site.db.reading() as session:
            page, next_cursor = await DisputeService(site).page(
                session, principal.user_id, status=status, limit=limit, cursor=cursor
            )
            return DisputePage(items=[dispute_out(d) for d in page], next_cursor=next_cursor)

    @get("/disputes/{dispute_id:uuid}", summary="A dispute with its evidence")
    async def get_dispute(
        self, request: Request[Any, Any, Any], dispute_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> DisputeOut:
        principal = require_principal(request)
        async with site.db.reading() as session:
            dispute = await DisputeService(site).visible(session, dispute_id, principal.user_id)
            return await full_out(site, session, dispute)

    @post(
        "/disputes/{dispute_id:uuid}/evidence", status_code=201, summary="Add a message and files (parties)"
    )
    async def add_evidence(
        self,
        request: Request[Any, Any, Any],
        dispute_id: FromPath[uuid.UUID],
        data: JSONBody[EvidenceIn],
        site: NamedDependency[Site],
    ) -> DisputeOut:
        principal = require_principal(request)
        service = DisputeService(site)
        async with site.db.transaction() as session:
            await service.add_evidence(session, dispute_id, principal.user_id, data.message, data.files)
            dispute = await service.visible(session, dispute_id, principal.user_id)
            return await full_out(site, session, dispute)

    @get(
        "/disputes/{dispute_id:uuid}/files/{file_id:uuid}",
        summary="Download a dispute's file",
        responses={200: DOWNLOAD, **problems(_404="No such dispute or file (or you may not see it)")},
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        dispute_id: FromPath[uuid.UUID],
        file_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> Response[bytes]:
        """The parties' and the admin's way to a file handed over on the disputed contract."""
        principal = require_principal(request)
        files = ContractFiles(site)
        async with site.db.reading() as session:
            dispute = await DisputeService(site).visible(session, dispute_id, principal.user_id)
            row = await session.get(ContractFile, file_id)
            if row is None or row.contract_id != dispute.contract_id or row.activity_id is None:
                raise NotFoundException("No such file.")
            return await files.download(row)


class AdminDisputesController(Controller):
    """Administrators' side of disputes; anyone else gets a 403."""

    path = "/api/v1/admin/disputes"
    tags = ["admin"]

    @staticmethod
    async def _admin(request: Request[Any, Any, Any], session: Any) -> uuid.UUID:
        principal = require_principal(request)
        if not await is_admin(session, principal.user_id):
            raise PermissionDeniedException("Administrators only.")
        return principal.user_id

    @get("/", summary="Every dispute, newest first (admins)")
    async def list_all(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        status: Status = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> DisputePage:
        async with site.db.reading() as session:
            await self._admin(request, session)
            page, next_cursor = await DisputeService(site).page(
                session, None, status=status, limit=limit, cursor=cursor
            )
            return DisputePage(items=[dispute_out(d) for d in page], next_cursor=next_cursor)

    @post(
        "/{dispute_id:uuid}/resolve",
        status_code=200,
        middleware=[idempotent],
        summary="Split the frozen escrow (admins)",
    )
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        dispute_id: FromPath[uuid.UUID],
        data: JSONBody[ResolveIn],
        site: NamedDependency[Site],
    ) -> DisputeOut:
        """``developer_amount`` goes to the developer (less the platform fee, after the usual
        hold); the rest is refunded to the client."""
        service = DisputeService(site)
        async with site.db.transaction() as session:
            admin_id = await self._admin(request, session)
            locked = await service.resolve(session, dispute_id, admin_id, data.developer_amount, data.note)
        if locked.refund:
            await Refunds(site).send(locked.refund)
        async with site.db.reading() as session:
            dispute = await service.visible(session, dispute_id, admin_id)
            return await full_out(site, session, dispute)
