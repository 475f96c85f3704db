"""The theme's contract pages: a contract with its milestones, the actions each party may take
on them now, and its timeline; the checkout that funds a milestone; the forms behind each
action. Only the contract's two parties see any of it (anyone else gets a 404).

Every form posts to a route here that calls the same service as the API, then answers with a
303 back to the contract (``?done=…`` says what happened) or, when the service refuses, the
contract page again with the message on the milestone it concerns.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from sqlalchemy import select

from mercato.core.accounts.forms import AnyRequest, Page, errors_of, form_text, parse_rate, redirect, to_login
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.models import User
from mercato.core.accounts.routes import require_principal
from mercato.core.catalog.display import format_money, plain_errors, refused
from mercato.core.contracts import schemas
from mercato.core.contracts.activity import ContractFiles, timeline
from mercato.core.contracts.milestones import MAX_NOTE, MilestoneService
from mercato.core.contracts.models import IN_ESCROW, Milestone, MilestoneStatus
from mercato.core.contracts.services import ContractService
from mercato.core.files import ALLOWED_TEXT, CONTENT_TYPES
from mercato.core.images import format_bytes
from mercato.core.payments.fees import FeeContext, checked_fee
from mercato.core.projects.models import Proposal
from mercato.core.projects.pages import STATUS_LABELS, time_ago
from mercato.core.site import Site

if TYPE_CHECKING:
    from litestar.datastructures import FormMultiDict, UploadFile

M = MilestoneStatus
TIMELINE_STEPS = 50
MAX_MILESTONE_MINOR = 10_000_000_00
LABELS = {**STATUS_LABELS, "proposed": "Proposed", "funding": "Payment on its way"}
NOTICES = {
    "funded": ("success", "The milestone is funded: the money is held in escrow until you approve the work."),
    "funding": ("success", "Your payment is on its way; the milestone shows as funded as soon as it clears."),
    "submitted": (
        "success",
        "Your work is submitted. The client reviews it and approves or asks for changes.",
    ),
    "changes": ("success", "Your request is sent to the developer."),
    "approved": ("success", "Approved: the payment is released to the developer."),
    "released": ("success", "Released: that part of the escrow is on its way to the developer."),
    "cancelled": ("success", "The milestone is cancelled."),
    "refunded": ("success", "The milestone is cancelled and its escrow refunded to the client."),
    "accepted": ("success", "The milestone is added to the contract."),
    "proposed": ("success", "Your milestone is proposed; the other party accepts or declines it."),
    "completed": ("success", "The contract is completed. Thank you both!"),
    "ended": ("success", "The contract is cancelled."),
    "disputed": ("success", "Your dispute is opened; the escrow is frozen until it is settled."),
}
ACTIONS = ("submit", "request-changes", "approve", "release", "cancel", "accept")


@dataclass
class PageState:
    """What a refused form brings back to the contract page."""

    errors: dict[str, str] = field(default_factory=dict)
    """Milestone id (or ``contract``) → the message."""
    values: dict[str, str] = field(default_factory=dict)
    open_form: str = ""
    """``<milestone id>:<action>`` whose form is shown open again."""


def _step_text(
    step: schemas.ActivityOut, titles: dict[uuid.UUID, str], names: dict[uuid.UUID, str], currency: str
) -> str:
    """One timeline step in words."""
    who = names.get(step.actor_id, "Someone") if step.actor_id else "mercato"
    title = f"“{titles.get(step.milestone_id, 'a milestone')}”" if step.milestone_id else ""
    amount = format_money(step.amount or 0, currency)
    data = step.data
    texts = {
        "contract.created": f"{who} started the contract ({amount}).",
        "milestone.proposed": f"{who} proposed {title} for {amount}.",
        "milestone.accepted": f"{who} accepted {title}: the contract grows by {amount}.",
        "milestone.funded": f"{who} funded {title}: {amount} is held in escrow.",
        "milestone.funding_failed": f"A payment for {title} did not go through.",
        "milestone.submitted": f"{who} submitted {title} for review.",
        "milestone.changes_requested": f"{who} asked for changes to {title}.",
        "payment.released": f"{amount} of {title} was released to the developer"
        f" ({format_money(int(data.get('fee', 0)), currency)} platform fee).",
        "milestone.approved": f"{title} was approved automatically after the review period."
        if data.get("automatic")
        else f"{who} approved {title}.",
        "milestone.cancelled": f"{who} cancelled {title}"
        + (
            f"; {format_money(int(data.get('refunded', 0)), currency)} is refunded to the client."
            if data.get("refunded")
            else "."
        ),
        "milestone.disputed": f"{who} opened a dispute on {title}: {amount} is frozen.",
        "dispute.evidence_added": f"{who} added evidence to the dispute on {title}.",
        "milestone.settled": f"The dispute on {title} was settled: "
        f"{format_money(int(data.get('released', 0)), currency)} to the developer, "
        f"{format_money(int(data.get('refunded', 0)), currency)} refunded to the client.",
        "milestone.auto_approve_soon": f"{title} will be approved automatically in 2 days without an answer.",
        "contract.completed": f"{who} completed the contract.",
        "contract.cancelled": f"{who} cancelled the contract.",
    }
    return texts.get(step.kind, step.kind.replace(".", " ").replace("_", " ").capitalize())


def _actions(
    milestone: schemas.MilestoneOut,
    *,
    is_client: bool,
    open_contract: bool,
    viewer: uuid.UUID,
    disputes: bool,
) -> list[str]:
    """What the viewer may do with a milestone now (the service checks again)."""
    if not open_contract:
        return []
    status = milestone.status
    found: list[str] = []
    if status == M.PROPOSED:
        found += ["withdraw"] if milestone.proposed_by == viewer else ["accept", "decline"]
    elif is_client:
        if status == M.PENDING:
            found += ["fund", "cancel"]
        if status == M.SUBMITTED:
            found += ["approve", "request-changes"]
        if status in IN_ESCROW and status != M.DISPUTED:
            found += ["release"] if status == M.SUBMITTED else ["approve", "release"]
    else:
        if status in (M.FUNDED, M.CHANGES_REQUESTED):
            found.append("submit")
        if status == M.PENDING or status == M.FUNDED:
            found.append("cancel")
    if disputes and status in (M.FUNDED, M.SUBMITTED, M.CHANGES_REQUESTED):
        found.append("dispute")
    return list(dict.fromkeys(found))


async def contract_page(
    request: AnyRequest,
    site: Site,
    contract_id: uuid.UUID,
    *,
    state: PageState | None = None,
    notices: list[tuple[str, str]] | None = None,
    status_code: int = 200,
) -> Template:
    principal = require_principal(request)
    state = state or PageState()
    service = ContractService()
    async with site.db.reading() as session:
        contract = await service.party_contract(session, contract_id, principal.user_id)
        out = await service.out(session, contract)
        steps = await timeline(session, contract_id, limit=TIMELINE_STEPS, cursor=None)
        ids = {out.client_id, out.developer_id} | {s.actor_id for s in steps.items if s.actor_id}
        names = {u.id: u.display_name for u in await session.scalars(select(User).where(User.id.in_(ids)))}
        project_id = None
        if out.origin_type == "proposal":
            project_id = await session.scalar(select(Proposal.project_id).where(Proposal.id == out.origin_id))
    is_client = principal.user_id == out.client_id
    disputes = "disputes" in site.plugins.loaded
    open_contract = out.status in ("pending_funding", "active")
    titles = {m.id: m.title for m in out.milestones}
    dispute_of: dict[uuid.UUID, str] = {}
    for step in reversed(steps.items):  # oldest first: the latest dispute of a milestone wins
        if step.kind == "milestone.disputed" and step.milestone_id and step.data.get("dispute_id"):
            dispute_of[step.milestone_id] = str(step.data["dispute_id"])
    milestones = [
        {
            "m": m,
            "actions": _actions(
                m,
                is_client=is_client,
                open_contract=open_contract,
                viewer=principal.user_id,
                disputes=disputes,
            ),
            "error": state.errors.get(str(m.id), ""),
            "dispute_url": f"/disputes/{dispute_of[m.id]}" if m.id in dispute_of and disputes else "",
        }
        for m in out.milestones
    ]
    settled = all(m.status in (M.APPROVED, M.CANCELLED) for m in out.milestones)
    page_notices = list(notices or [])
    done = request.query_params.get("done")
    if done in NOTICES:
        page_notices.append(NOTICES[done])
    if request.query_params.get("hired") and is_client:
        page_notices.append(
            (
                "success",
                f"You hired {names.get(out.developer_id, 'the developer')}. "
                "Fund the first milestone so the work can start.",
            )
        )
    if state.errors.get("contract"):
        page_notices.append(("error", state.errors["contract"]))
    return await site.templates.page(
        request,
        "contracts/contract.html",
        {
            "contract": out,
            "money": format_money,
            "money_input": lambda minor: f"{minor / 100:.2f}",
            "status_labels": LABELS,
            "notices": page_notices,
            "client_name": names.get(out.client_id, "Deleted user"),
            "developer_name": names.get(out.developer_id, "Deleted user"),
            "is_client": is_client,
            "project_id": project_id,
            "milestones": milestones,
            "open_contract": open_contract,
            "can_complete": out.status == "active" and settled,
            "can_end": open_contract
            and all(m.status in (M.APPROVED, M.CANCELLED, M.PENDING, M.PROPOSED) for m in out.milestones),
            "in_escrow": sum(m.in_escrow for m in out.milestones),
            "released": sum(m.released for m in out.milestones),
            "steps": [
                {"step": s, "text": _step_text(s, titles, names, out.currency), "ago": time_ago(s.created_at)}
                for s in steps.items
            ],
            "values": state.values,
            "open_form": state.open_form,
        "propose_error": state.errors.get("propose", ""),
            "accept_files": ",".join(f".{ext}" for ext in sorted(CONTENT_TYPES)),
            "allowed_files": ALLOWED_TEXT,
            "max_file_size": format_bytes(site.settings.uploads.max_attachment_bytes),
            "file_size": format_bytes,
            "max_note": MAX_NOTE,
        "chat_enabled": "chat" in site.plugins.loaded,
        },
        status_code=status_code,
    )


@get("/contracts/{contract_id:uuid}", include_in_schema=False, name="contracts:detail")
async def show_contract(
    request: AnyRequest,
    contract_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
    done: FromQuery[str | None] = None,
    hired: FromQuery[str | None] = None,
) -> Page:
    """A contract's milestones, the actions each party may take now, and its timeline."""
    if principal_of(request) is None:
        return to_login(f"/contracts/{contract_id}")
    return await contract_page(request, site, contract_id)


def problem_text(exc: HTTPException) -> str:
    """A service's refusal as one sentence for a form (the first field's message)."""
    return next(iter(plain_errors(errors_of(exc)).values()))


async def _milestone_of(
    site: Site, contract_id: uuid.UUID, milestone_id: uuid.UUID, user_id: uuid.UUID
) -> Milestone:
    """The milestone if it belongs to the contract and the user is a party; 404 otherwise."""
    async with site.db.reading() as session:
        await ContractService().party_contract(session, contract_id, user_id)
        milestone = await session.get(Milestone, milestone_id)
        if milestone is None or milestone.contract_id != contract_id:
            raise NotFoundException("No such milestone.")
        session.expunge(milestone)  # read after the session ends
        return milestone


async def _act(
    request: AnyRequest, site: Site, contract_id: uuid.UUID, milestone_id: uuid.UUID, action: str
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/contracts/{contract_id}")
    user_id = principal.user_id
    milestone = await _milestone_of(site, contract_id, milestone_id, user_id)
    form = await request.form()
    service = MilestoneService(site)
    values = {
        "message": form_text(form, "message"),
        "note": form_text(form, "note"),
        "amount": form_text(form, "amount"),
    }
    uploaded: list[uuid.UUID] = []
    done = action
    try:
        if action == "submit":
            files = ContractFiles(site)
            for upload in _chosen(form):
                row = await files.upload(contract_id, user_id, upload.filename or "", await upload.read())
                uploaded.append(row.id)
            async with site.db.transaction() as session:
                await service.submit(session, milestone_id, user_id, values["note"][:MAX_NOTE], uploaded)
            done = "submitted"
        elif action == "request-changes":
            if not values["message"].strip():
                return await _refused(
                    request, site, contract_id, milestone_id, action, values, "Say what should change.", 400
                )
            async with site.db.transaction() as session:
                await service.request_changes(session, milestone_id, user_id, values["message"][:MAX_NOTE])
            done = "changes"
        elif action == "approve":
            async with site.db.transaction() as session:
                await service.release(session, milestone_id, user_id)
            done = "approved"
        elif action == "release":
            parsed, problem = parse_rate(
                values["amount"],
                milestone_currency := await _currency(site, contract_id),
                maximum=MAX_MILESTONE_MINOR,
            )
            if parsed is None:
                return await _refused(
                    request,
                    site,
                    contract_id,
                    milestone_id,
                    action,
                    values,
                    problem or f"Enter how much to release, in {milestone_currency}.",
                    400,
                )
            async with site.db.transaction() as session:
                await service.release(session, milestone_id, user_id, int(parsed["amount"]))
            done = "released"
        elif action == "cancel":
            refund = milestone.status in IN_ESCROW
            await service.cancel_now(milestone_id, user_id)
            done = "refunded" if refund else "cancelled"
        elif action == "accept":
            async with site.db.transaction() as session:
                await service.accept(session, milestone_id, user_id)
            done = "accepted"
    except HTTPException as exc:
        if uploaded:  # handed over nothing: the files go again
            for file_id in uploaded:
                with contextlib.suppress(HTTPException):
                    await ContractFiles(site).remove(contract_id, file_id, user_id)
        if not refused(exc):
            raise
        return await _refused(
            request, site, contract_id, milestone_id, action, values, problem_text(exc), exc.status_code
        )
    return redirect(f"/contracts/{contract_id}?done={done}#milestone-{milestone_id}")


async def _currency(site: Site, contract_id: uuid.UUID) -> str:
    async with site.db.reading() as session:
        return (await ContractService().get(session, contract_id)).currency


def _chosen(form: FormMultiDict) -> list[UploadFile]:
    from litestar.datastructures import UploadFile

    return [f for f in form.getall("files", []) if isinstance(f, UploadFile) and f.filename]


async def _refused(
    request: AnyRequest,
    site: Site,
    contract_id: uuid.UUID,
    milestone_id: uuid.UUID,
    action: str,
    values: dict[str, str],
    message: str,
    status_code: int,
) -> Template:
    state = PageState(
        errors={str(milestone_id): message}, values=values, open_form=f"{milestone_id}:{action}"
    )
    return await contract_page(request, site, contract_id, state=state, status_code=status_code)


def _action_route(action: str) -> Any:
    async def act(
        request: AnyRequest,
        contract_id: FromPath[uuid.UUID],
        milestone_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> Page:
        return await _act(request, site, contract_id, milestone_id, action)

    act.__name__ = f"milestone_{action.replace('-', '_')}"
    act.__qualname__ = act.__name__
    act.__doc__ = f"The {action.replace('-', ' ')} form of a milestone."
    return post(
        f"/contracts/{{contract_id:uuid}}/milestones/{{milestone_id:uuid}}/{action}",
        include_in_schema=False,
        name=f"contracts:milestone-{action}",
    )(act)


# -- checkout ------------------------------------------------------------------------------
async def checkout_page(
    request: AnyRequest,
    site: Site,
    contract_id: uuid.UUID,
    milestone_id: uuid.UUID,
    *,
    error: str = "",
    card: str = "",
    status_code: int = 200,
) -> Template:
    principal = require_principal(request)
    milestone = await _milestone_of(site, contract_id, milestone_id, principal.user_id)
    async with site.db.reading() as session:
        contract = await ContractService().get(session, contract_id)
        session.expunge(contract)
    if principal.user_id != contract.client_id:
        raise NotFoundException("No such checkout.")
    policy = site.plugins.fee_policy(site)
    fee = checked_fee(
        policy.client_fee(
            FeeContext(
                amount=milestone.amount,
                currency=contract.currency,
                contract_id=contract.id,
                client_id=contract.client_id,
                developer_id=contract.developer_id,
            )
        ),
        milestone.amount,
        what="client fee",
    )
    gateway = site.gateways.get(site.settings.payments.default_gateway)
    return await site.templates.page(
        request,
        "contracts/checkout.html",
        {
            "contract": contract,
            "milestone": milestone,
            "fee": fee,
            "total": milestone.amount + fee,
            "money": format_money,
            "gateway": gateway,
            "error": error,
            "card": card,
            "payable": milestone.status == M.PENDING and contract.status in ("pending_funding", "active"),
            "status_labels": LABELS,
        },
        status_code=status_code,
    )


@get(
    "/contracts/{contract_id:uuid}/milestones/{milestone_id:uuid}/checkout",
    include_in_schema=False,
    name="contracts:checkout",
)
async def show_checkout(
    request: AnyRequest,
    contract_id: FromPath[uuid.UUID],
    milestone_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
) -> Page:
    """Pay a milestone into escrow (the contract's client)."""
    if principal_of(request) is None:
        return to_login(f"/contracts/{contract_id}/milestones/{milestone_id}/checkout")
    return await checkout_page(request, site, contract_id, milestone_id)


@post(
    "/contracts/{contract_id:uuid}/milestones/{milestone_id:uuid}/checkout",
    include_in_schema=False,
    name="contracts:pay",
)
async def pay(
    request: AnyRequest,
    contract_id: FromPath[uuid.UUID],
    milestone_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/contracts/{contract_id}")
    await _milestone_of(site, contract_id, milestone_id, principal.user_id)
    card = form_text(await request.form(), "card_number").strip()
    if not card:
        return await checkout_page(
            request, site, contract_id, milestone_id, status_code=400, error="Enter a card number."
        )
    try:
        await MilestoneService(site).fund(milestone_id, principal.user_id, card)
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await checkout_page(
            request,
            site,
            contract_id,
            milestone_id,
            error=problem_text(exc),
            card=card,
            status_code=exc.status_code,
        )
    async with site.db.reading() as session:
        status = (await session.get(Milestone, milestone_id)).status  # type: ignore[union-attr]
    done = "funded" if status != M.FUNDING else "funding"
    return redirect(f"/contracts/{contract_id}?done={done}#milestone-{milestone_id}")


# -- the contract as a whole -----------------------------------------------------------------
@post("/contracts/{contract_id:uuid}/milestones", include_in_schema=False, name="contracts:propose")
async def propose_milestone(
    request: AnyRequest, contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/contracts/{contract_id}")
    form = await request.form()
    values = {name: form_text(form, name) for name in ("title", "amount", "due_days", "description")}
    currency = await _currency(site, contract_id)
    parsed, problem = parse_rate(values["amount"], currency, maximum=MAX_MILESTONE_MINOR)
    due = values["due_days"].strip()
    if not values["title"].strip():
        problem = "Give the milestone a title."
    elif parsed is None or not parsed["amount"]:
        problem = problem or f"Enter the milestone's amount in {currency}."
    elif due and (not due.isdigit() or not 1 <= int(due) <= 3650):
        problem = "Enter the due day as a number of days from the start (1 to 3650), or leave it empty."
    if problem:
        return await contract_page(
            request,
            site,
            contract_id,
            status_code=400,
            state=PageState(errors={"propose": problem}, values=values, open_form="propose"),
        )
    assert parsed is not None
    try:
        async with site.db.transaction() as session:
            await MilestoneService(site).propose(
                session,
                contract_id,
                principal.user_id,
                title=values["title"].strip()[:200],
                amount=int(parsed["amount"]),
                description=values["description"][:5000],
                due_days=int(due) if due else None,
            )
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await contract_page(
            request,
            site,
            contract_id,
            status_code=exc.status_code,
            state=PageState(errors={"propose": problem_text(exc)}, values=values, open_form="propose"),
        )
    return redirect(f"/contracts/{contract_id}?done=proposed#milestones")


async def _whole(request: AnyRequest, site: Site, contract_id: uuid.UUID, action: str) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/contracts/{contract_id}")
    service = MilestoneService(site)
    try:
        async with site.db.transaction() as session:
            if action == "complete":
                await service.complete(session, contract_id, principal.user_id)
            else:
                await service.end(session, contract_id, principal.user_id)
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await contract_page(
            request,
            site,
            contract_id,
            status_code=exc.status_code,
            state=PageState(errors={"contract": problem_text(exc)}),
        )
    return redirect(f"/contracts/{contract_id}?done={'completed' if action == 'complete' else 'ended'}")


@post("/contracts/{contract_id:uuid}/complete", include_in_schema=False, name="contracts:complete")
async def complete_contract(
    request: AnyRequest, contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _whole(request, site, contract_id, "complete")


@post("/contracts/{contract_id:uuid}/cancel", include_in_schema=False, name="contracts:cancel")
async def cancel_contract(
    request: AnyRequest, contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _whole(request, site, contract_id, "cancel")


PAGE_ROUTES: list[Any] = [
    show_contract,
    show_checkout,
    pay,
    propose_milestone,
    complete_contract,
    cancel_contract,
    *(_action_route(action) for action in ACTIONS),
]
