"""The disputes plugin's pages: opening a dispute from the contract page, the dispute page for
both parties and administrators (evidence, the response window, the decision), and the
administrators' list of disputes."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from litestar import get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from sqlalchemy import select

from mercato.core.accounts.forms import AnyRequest, Page, form_text, parse_rate, redirect, to_login
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.models import User
from mercato.core.accounts.routes import require_principal
from mercato.core.catalog.display import format_money, refused
from mercato.core.contracts.activity import ContractFiles
from mercato.core.contracts.models import Contract, Milestone
from mercato.core.contracts.pages import LABELS, PageState, contract_page, problem_text
from mercato.core.db import utcnow
from mercato.core.files import ALLOWED_TEXT, CONTENT_TYPES
from mercato.core.images import format_bytes
from mercato.core.payments.refunds import Refunds
from mercato.core.projects.pages import time_ago
from mercato.core.site import Site

from .routes import dispute_out, full_out
from .service import MAX_TEXT, DisputeService, is_admin

NOTICES = {
    "opened": (
        "success",
        "Your dispute is open. The other party is asked to respond; add your evidence below.",
    ),
    "evidence": ("success", "Your evidence is added."),
    "resolved": ("success", "The dispute is resolved and the money has moved as decided."),
}
DISPUTE_LABELS = {**LABELS, "open": "Open", "resolved": "Resolved"}


@post(
    "/contracts/{contract_id:uuid}/milestones/{milestone_id:uuid}/dispute",
    include_in_schema=False,
    name="disputes:open",
)
async def open_dispute(
    request: AnyRequest,
    contract_id: FromPath[uuid.UUID],
    milestone_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/contracts/{contract_id}")
    reason = form_text(await request.form(), "reason").strip()
    problem, status_code = "", 400
    async with site.db.reading() as session:
        milestone = await session.get(Milestone, milestone_id)
        if milestone is None or milestone.contract_id != contract_id:
            raise NotFoundException("No such milestone.")
    if len(reason) < 10:
        problem = "Say what went wrong, in 10 characters or more."
    else:
        try:
            async with site.db.transaction() as session:
                service = DisputeService(site)
                dispute_id = (
                    await service.open(session, milestone_id, principal.user_id, reason[:MAX_TEXT])
                ).id
        except HTTPException as exc:
            if not refused(exc):
                raise
            problem, status_code = problem_text(exc), exc.status_code
    if problem:
        state = PageState(
            errors={str(milestone_id): problem},
            values={"reason": reason},
            open_form=f"{milestone_id}:dispute",
        )
        return await contract_page(request, site, contract_id, state=state, status_code=status_code)
    return redirect(f"/disputes/{dispute_id}?done=opened")


async def dispute_page(
    request: AnyRequest,
    site: Site,
    dispute_id: uuid.UUID,
    *,
    error: str = "",
    resolve_error: str = "",
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    principal = require_principal(request)
    service = DisputeService(site)
    async with site.db.reading() as session:
        dispute = await service.visible(session, dispute_id, principal.user_id)
        out = await full_out(site, session, dispute)
        contract = await session.get(Contract, dispute.contract_id)
        milestone = await session.get(Milestone, dispute.milestone_id)
        assert contract is not None
        assert milestone is not None
        admin = await is_admin(session, principal.user_id)
        ids = {contract.client_id, contract.developer_id} | {e.author_id for e in out.evidence if e.author_id}
        names = {u.id: u.display_name for u in await session.scalars(select(User).where(User.id.in_(ids)))}
        party = principal.user_id in (dispute.opened_by, dispute.respondent_id)
        overdue = dispute.responded_at is None and dispute.respond_by < utcnow()
        session.expunge(contract)
        session.expunge(milestone)
    notices = []
    done = request.query_params.get("done")
    if done in NOTICES:
        notices.append(NOTICES[done])
    role = {contract.client_id: "client", contract.developer_id: "developer"}
    return await site.templates.page(
        request,
        "disputes/dispute.html",
        {
            "dispute": out,
            "contract": contract,
            "milestone": milestone,
            "names": names,
            "role": role,
            "money": format_money,
            "money_input": lambda minor: f"{minor / 100:.2f}",
            "ago": time_ago,
            "status_labels": DISPUTE_LABELS,
            "notices": notices,
            "is_admin": admin,
            "is_party": party,
            "viewer": principal.user_id,
            "overdue": overdue,
            "error": error,
            "resolve_error": resolve_error,
            "values": values or {},
            "accept_files": ",".join(f".{ext}" for ext in sorted(CONTENT_TYPES)),
            "allowed_files": ALLOWED_TEXT,
            "max_file_size": format_bytes(site.settings.uploads.max_attachment_bytes),
            "file_size": format_bytes,
        },
        status_code=status_code,
    )


@get("/disputes/{dispute_id:uuid}", include_in_schema=False, name="disputes:detail")
async def show_dispute(
    request: AnyRequest,
    dispute_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
    done: FromQuery[str | None] = None,
) -> Page:
    """A dispute: what is frozen, both parties' evidence, and the decision."""
    if principal_of(request) is None:
        return to_login(f"/disputes/{dispute_id}")
    return await dispute_page(request, site, dispute_id)


@post("/disputes/{dispute_id:uuid}/evidence", include_in_schema=False, name="disputes:evidence")
async def add_evidence(
    request: AnyRequest, dispute_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/disputes/{dispute_id}")
    service = DisputeService(site)
    async with site.db.reading() as session:
        dispute = await service.visible(session, dispute_id, principal.user_id)
        contract_id = dispute.contract_id
    form = await request.form()
    message = form_text(form, "message")
    chosen = [f for f in form.getall("files", []) if isinstance(f, UploadFile) and f.filename]
    files, uploaded = ContractFiles(site), []
    try:
        for upload in chosen:
            uploaded.append(
                (
                    await files.upload(
                        contract_id, principal.user_id, upload.filename or "", await upload.read()
                    )
                ).id
            )
        async with site.db.transaction() as session:
            await service.add_evidence(session, dispute_id, principal.user_id, message[:MAX_TEXT], uploaded)
    except HTTPException as exc:
        for file_id in uploaded:
            with contextlib.suppress(HTTPException):
                await files.remove(contract_id, file_id, principal.user_id)
        if not refused(exc):
            raise
        return await dispute_page(
            request,
            site,
            dispute_id,
            error=problem_text(exc),
            values={"message": message},
            status_code=exc.status_code,
        )
    return redirect(f"/disputes/{dispute_id}?done=evidence#evidence")


@post("/disputes/{dispute_id:uuid}/resolve", include_in_schema=False, name="disputes:resolve")
async def resolve(request: AnyRequest, dispute_id: FromPath[uuid.UUID], site: NamedDependency[Site]) -> Page:
    """An administrator's decision: the developer's share in major units, and the reasons."""
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/disputes/{dispute_id}")
    service = DisputeService(site)
    async with site.db.reading() as session:
        dispute = await service.visible(session, dispute_id, principal.user_id)
        if not await is_admin(session, principal.user_id):
            raise NotFoundException("No such page.")
        currency, frozen = dispute.currency, dispute.amount
    form = await request.form()
    values = {"developer_amount": form_text(form, "developer_amount"), "note": form_text(form, "note")}
    parsed, problem = parse_rate(values["developer_amount"] or "", currency, maximum=frozen)
    if parsed is None:
        problem = problem or "Enter the developer's share (0 gives everything back to the client)."
    elif not values["note"].strip():
        problem = "Give your reasons: both parties read them."
    if problem:
        return await dispute_page(
            request, site, dispute_id, resolve_error=problem, values=values, status_code=400
        )
    assert parsed is not None
    try:
        async with site.db.transaction() as session:
            locked = await service.resolve(
                session,
                dispute_id,
                principal.user_id,
                int(parsed["amount"]),
                values["note"].strip()[:MAX_TEXT],
            )
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await dispute_page(
            request,
            site,
            dispute_id,
            resolve_error=problem_text(exc),
            values=values,
            status_code=exc.status_code,
        )
    if locked.refund:
        await Refunds(site).send(locked.refund)
    return redirect(f"/disputes/{dispute_id}?done=resolved")


@get("/admin/disputes", include_in_schema=False, name="disputes:admin")
async def admin_disputes(
    request: AnyRequest,
    site: NamedDependency[Site],
    status: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Page:
    """Every dispute, open ones by default (administrators only; anyone else gets a 403)."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/admin/disputes")
    status = status if status in ("open", "resolved") else "open"
    service = DisputeService(site)
    async with site.db.reading() as session:
        if not await is_admin(session, principal.user_id):
            raise PermissionDeniedException("Administrators only.")
        page, next_cursor = await service.page(
            session, None, status=status, limit=25, cursor=cursor
        )
        rows: list[dict[str, Any]] = []
        if page:
            contracts = {
                c.id: c
                for c in await session.scalars(
                    select(Contract).where(Contract.id.in_([d.contract_id for d in page]))
                )
            }
            titles = {
                row.id: row.title
                for row in await session.execute(
                    select(Milestone.id, Milestone.title).where(
                        Milestone.id.in_([d.milestone_id for d in page])
                    )
                )
            }
            people = {
                u.id: u.display_name
                for u in await session.scalars(
                    select(User).where(
                        User.id.in_({d.opened_by for d in page} | {d.respondent_id for d in page})
                    )
                )
            }
            rows = [
                {
                    "d": dispute_out(d),
                    "contract": contracts[d.contract_id].title if d.contract_id in contracts else "",
                    "milestone": titles.get(d.milestone_id, ""),
                    "opener": people.get(d.opened_by, "Deleted user"),
                    "respondent": people.get(d.respondent_id, "Deleted user"),
                }
                for d in page
            ]
    return await site.templates.page(
        request,
        "disputes/admin.html",
        {
            "rows": rows,
            "status": status,
            "next_cursor": next_cursor,
            "money": format_money,
            "ago": time_ago,
            "now": utcnow(),
        },
    )


PAGE_ROUTES: list[Any] = [open_dispute, show_dispute, add_evidence, resolve, admin_disputes]
