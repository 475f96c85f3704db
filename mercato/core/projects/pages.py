"""The theme's project pages: browsing open projects, posting and editing one, the project
page (bidding for developers; comparing, shortlisting, declining and hiring for its client)
(contracts' pages are in ``mercato.core.contracts.pages``, the dashboard in
``dashboard.py``). Server-rendered forms; JavaScript
only adds comfort.

Money is typed in major units (``1500``, ``62.50``) and stored in minor units. Forms that fail
re-render with the input kept and the message next to the field (status 400; 403 or 409 when
the service refuses). Someone else's draft, proposal or contract is a 404, never a hint.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template
from markupsafe import Markup

from mercato.core.accounts import schemas as account_schemas
from mercato.core.accounts.forms import (
    CURRENCIES,
    CURRENCY_SYMBOLS,
    AnyRequest,
    Page,
    errors_of,
    form_text,
    format_amount,
    format_rate,
    parse_rate,
    redirect,
    schema_errors,
    skill_names,
    split_list,
    to_login,
)
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.routes import current_user, require_principal
from mercato.core.catalog.display import (
    Names,
    excerpt,
    format_money,
    load_names,
    needs_verification,
    plain_errors,
    refused,
)
from mercato.core.db import utcnow
from mercato.core.files import ALLOWED_TEXT, CONTENT_TYPES, CheckedFile
from mercato.core.images import format_bytes
from mercato.core.projects import schemas
from mercato.core.projects.attachments import MAX_ATTACHMENTS, AttachmentService, LoadOwner, attachments_of
from mercato.core.projects.models import Project, ProjectStatus, Proposal, ProposalStatus
from mercato.core.projects.proposals import ProposalService
from mercato.core.projects.routes import editable_proposal, owned_project
from mercato.core.projects.services import ProjectService
from mercato.core.site import Site

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.datastructures import FormMultiDict
    from sqlalchemy.ext.asyncio import AsyncSession

DURATIONS = {
    "less_than_week": "Less than a week",
    "1_4_weeks": "1 to 4 weeks",
    "1_3_months": "1 to 3 months",
    "3_6_months": "3 to 6 months",
    "over_6_months": "More than 6 months",
}
EXPERIENCE = {"entry": "Entry level", "intermediate": "Intermediate", "expert": "Expert"}
BUDGET_TYPES = {"fixed": "Fixed price", "hourly": "Hourly rate"}
VISIBILITY = {"public": "Public", "invite_only": "Invite only"}
STATUS_LABELS = {
    "draft": "Draft",
    "open": "Open",
    "hired": "Hired",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "closed": "Closed",
    "submitted": "Submitted",
    "shortlisted": "Shortlisted",
    "accepted": "Accepted",
    "declined": "Declined",
    "withdrawn": "Withdrawn",
    "pending_funding": "Awaiting funding",
    "active": "Active",
    "disputed": "Disputed",
    "pending": "Pending",
    "funded": "Funded",
    "changes_requested": "Changes requested",
    "approved": "Approved",
}
PROPOSAL_SORTS = {"newest": "Newest", "price": "Price", "duration": "Duration", "skill_match": "Skill match",
                  "rating": "Rating"}
PROPOSAL_FILTERS = ("submitted", "shortlisted", "accepted", "declined", "withdrawn")
MAX_QUESTIONS = 5
MAX_AMOUNT_MINOR = 10_000_000_00
"""The largest budget or bid a form accepts (the API's limit)."""
MAX_MILESTONE_ROWS = 5
PAGE_SIZE = 20
PROJECT_FIELDS = (
    "title",
    "description",
    "category",
    "skills",
    "budget_type",
    "budget_min",
    "budget_max",
    "currency",
    "duration",
    "experience_level",
    "visibility",
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")

_PROJECT_NOTICES = {
    "posted": ("success", "Your project is published: developers can now send proposals."),
    "draft": ("success", "Saved as a draft. Only you can see it until you publish it."),
    "published": ("success", "Your project is published: developers can now send proposals."),
    "saved": ("success", "Your changes are saved."),
    "closed": ("success", "The project is closed. Developers with open proposals were told."),
    "cancelled": ("success", "The project is cancelled. Developers with open proposals were told."),
    "invited": ("success", "Invitation sent: the developer sees it on their dashboard."),
    "bid": ("success", "Your proposal is sent. The client is notified and can shortlist or hire you."),
    "bid-edited": ("success", "Your proposal is updated."),
    "withdrawn": ("success", "Your proposal is withdrawn. You can bid again while the project is open."),
    "shortlisted": ("success", "The proposal is shortlisted."),
    "declined": ("success", "The proposal is declined; the developer was told."),
}

Slugs = Annotated[list[str] | None, QueryParameter(max_items=40)]


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


def format_price(minor: int, currency: str, hourly: bool) -> str:
    """A total (``$1,500``) or an hourly rate (``$90/hr``)."""
    if hourly:
        return format_rate(account_schemas.Money(amount=minor, currency=currency))
    return format_money(minor, currency)


def format_budget(budget: schemas.BudgetOut) -> str:
    """``$500 - $1,500``, ``$40 - $80/hr`` or one amount when both ends are equal."""
    hourly = budget.type == "hourly"
    if budget.min == budget.max:
        return format_price(budget.min, budget.currency, hourly)
    text = f"{format_money(budget.min, budget.currency)} \u2013 {format_money(budget.max, budget.currency)}"
    return f"{text}/hr" if hourly else text


def time_ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``just now``, ``5 minutes ago``, ``yesterday``, ``3 days ago``, ``2 months ago``."""
    if moment is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    if 86_400 <= seconds < 2 * 86_400:
        return "yesterday"
    units = (
        (365 * 86_400, "year"),
        (30 * 86_400, "month"),
        (7 * 86_400, "week"),
        (86_400, "day"),
        (3600, "hour"),
        (60, "minute"),
    )
    for size, unit in units:
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"  # pragma: no cover


def money_input(minor: int) -> str:
    """Minor units as typed into a form (``1500``, ``62.50``)."""
    return format_amount(minor).replace(",", "")


def developer_id_in(text: str) -> uuid.UUID | None:
    """The user id in a pasted profile link (``https://…/users/<uuid>``) or a bare id."""
    found = _UUID.search(text.strip())
    return uuid.UUID(found.group(0)) if found else None


def helpers(names: Names) -> dict[str, Any]:
    """Formatting functions every project template may call."""
    return {
        "money": format_money,
        "price": format_price,
        "budget_text": format_budget,
        "ago": time_ago,
        "category_name": names.category,
        "skill_name": names.skill,
        "status_labels": STATUS_LABELS,
        "durations": DURATIONS,
        "experience_levels": EXPERIENCE,
        "budget_types": BUDGET_TYPES,
    }


async def render(
    request: AnyRequest, site: Site, template: str, values: dict[str, Any], *, status_code: int = 200
) -> Template:
    """A themed page (``projects/<template>``)."""
    return await site.templates.page(request, f"projects/{template}", values, status_code=status_code)


def card(project: schemas.ProjectOut, names: Names) -> dict[str, Any]:
    """What a project's card in a list shows."""
    return {
        "project": project,
        "url": f"/projects/{project.id}",
        "budget": format_budget(project.budget),
        "category": names.category(project.category),
        "skills": [names.skill(slug) for slug in project.skills],
        "posted": time_ago(project.published_at or project.created_at),
        "posted_at": (project.published_at or project.created_at).isoformat(),
        "excerpt": excerpt(project.description),
    }


# ---------------------------------------------------------------------------
# Posting and editing a project
# ---------------------------------------------------------------------------


def project_form_values(form: FormMultiDict) -> dict[str, Any]:
    values: dict[str, Any] = {name: form_text(form, name) for name in PROJECT_FIELDS}
    questions = [q if isinstance(q, str) else "" for q in form.getall("questions", [])][:MAX_QUESTIONS]
    values["questions"] = questions + [""] * (MAX_QUESTIONS - len(questions))
    return values


def project_form_of(project: Project, names: Names) -> dict[str, Any]:
    """The form filled with a saved project."""
    questions = list(project.screening_questions)[:MAX_QUESTIONS]
    return {
        "title": project.title,
        "description": project.description,
        "category": project.category_slug,
        "skills": ", ".join(names.skill(slug) for slug in project.skills),
        "budget_type": project.budget_type,
        "budget_min": money_input(project.budget_min),
        "budget_max": money_input(project.budget_max),
        "currency": project.currency,
        "duration": project.duration,
        "experience_level": project.experience_level,
        "visibility": project.visibility,
        "questions": questions + [""] * (MAX_QUESTIONS - len(questions)),
    }


def empty_project_form() -> dict[str, Any]:
    return {
        **dict.fromkeys(PROJECT_FIELDS, ""),
        "budget_type": "fixed",
        "currency": "USD",
        "experience_level": "intermediate",
        "visibility": "public",
        "questions": [""] * MAX_QUESTIONS,
    }


def project_body(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body a project form describes, and what is wrong with it (friendlier than the
    schema's messages for the fields people get wrong most)."""
    errors: dict[str, str] = {}
    title = " ".join(values["title"].split())
    if len(title) < 5:
        errors["title"] = "Give the project a title of at least 5 characters."
    if len(values["description"].strip()) < 20:
        errors["description"] = (
            "Describe the work in at least 20 characters: goals, deliverables, constraints."
        )
    if not values["category"]:
        errors["category"] = "Pick a category."
    if values["budget_type"] not in BUDGET_TYPES:
        errors["budget_type"] = "Choose a fixed price or an hourly rate."
    currency = values["currency"]
    if currency not in CURRENCIES:
        errors["currency"] = "Pick a currency from the list."
    amounts: dict[str, int] = {}
    for name, missing in (
        ("budget_min", "Enter the least you expect to pay."),
        ("budget_max", "Enter the most you would pay."),
    ):
        money, problem = parse_rate(
            values[name], currency if currency in CURRENCIES else "USD", maximum=MAX_AMOUNT_MINOR
        )
        if problem:
            errors[name] = problem
        elif money is None:
            errors[name] = missing
        elif money["amount"] < 1:
            errors[name] = "Enter an amount above zero."
        else:
            amounts[name] = money["amount"]
    if len(amounts) == 2 and amounts["budget_max"] < amounts["budget_min"]:
        errors["budget_max"] = "The maximum must be at least the minimum."
    if values["duration"] not in DURATIONS:
        errors["duration"] = "Pick how long you expect the work to take."
    if values["experience_level"] not in EXPERIENCE:
        errors["experience_level"] = "Pick an experience level."
    if values["visibility"] not in VISIBILITY:
        errors["visibility"] = "Choose who can see the project."
    body = {
        "title": title,
        "description": values["description"],
        "category": values["category"],
        "skills": split_list(values["skills"]),
        "budget": {
            "type": values["budget_type"],
            "min": amounts.get("budget_min", 0),
            "max": amounts.get("budget_max", 0),
            "currency": currency,
        },
        "duration": values["duration"],
        "experience_level": values["experience_level"],
        "visibility": values["visibility"],
        "screening_questions": [q.strip() for q in values["questions"] if q.strip()],
    }
    return body, errors


# Files in forms: one ``attachments`` input (multiple), checked before anything is saved, stored
# before the transaction and deleted again when it fails.
ATTACHMENT_FIELD = "attachments"
ACCEPT_FILES = ",".join(f".{extension}" for extension in CONTENT_TYPES)


def chosen_files(form: FormMultiDict) -> list[UploadFile]:
    """The files picked in a form's ``attachments`` input (browsers send an empty part for none)."""
    return [v for v in form.getall(ATTACHMENT_FIELD, []) if isinstance(v, UploadFile) and v.filename]


async def check_chosen_files(site: Site, form: FormMultiDict, errors: dict[str, str]) -> list[CheckedFile]:
    """The form's files, checked; what is wrong with them goes to ``errors["attachments"]``."""
    chosen = chosen_files(form)
    if len(chosen) > MAX_ATTACHMENTS:
        errors[ATTACHMENT_FIELD] = f"Choose at most {MAX_ATTACHMENTS} files."
        return []
    try:
        return await AttachmentService(site).check(
            [(upload.filename, await upload.read()) for upload in chosen], field=ATTACHMENT_FIELD
        )
    except HTTPException as exc:  # empty, too large, not what the name says
        errors[ATTACHMENT_FIELD] = str(exc.detail)
        return []


async def save_with_files(
    request: AnyRequest,
    site: Site,
    checked: list[CheckedFile],
    errors: dict[str, str],
    save: Callable[[AsyncSession, User], Awaitable[Project | Proposal]],
) -> int | None:
    """Store the form's files, then in one transaction ``save(session, user)`` the form and attach
    them to the project or proposal it returns. ``None`` when saved; a refusal's messages go to
    ``errors`` and its status code is returned."""
    files = AttachmentService(site)
    try:
        async with files.attaching(checked) as (session, stored):
            user = await current_user(request, session, site)
            await files.attach(session, user, stored, await save(session, user), field=ATTACHMENT_FIELD)
    except HTTPException as exc:
        if not refused(exc):
            raise
        errors.update(plain_errors(errors_of(exc)))
        return exc.status_code
    return None


def file_helpers(site: Site) -> dict[str, Any]:
    """What the templates need to list files and take new ones."""
    return {
        "file_size": format_bytes,
        "max_attachments": MAX_ATTACHMENTS,
        "max_attachment_size": format_bytes(site.settings.uploads.max_attachment_bytes),
        "accept_files": ACCEPT_FILES,
        "allowed_files": ALLOWED_TEXT,
    }


async def project_form_page(
    request: AnyRequest,
    site: Site,
    *,
    mode: str,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    project_id: uuid.UUID | None = None,
    has_proposals: bool = False,
    attachments: list[schemas.AttachmentOut] | None = None,
    status_code: int = 200,
) -> Template:
    """``projects/new.html`` or ``projects/edit.html`` (both include ``_form.html``)."""
    async with site.db.reading() as session:
        user = await current_user(request, session, site)
        names = await load_names(session, site)
        skill_options = await skill_names(session, site)
        is_client, verify = user.is_client, needs_verification(site, user)
    form_errors = errors or {}
    return await render(
        request,
        site,
        f"{mode}.html",
        {
            **helpers(names),
            "form": form,
            "errors": form_errors,
            "tree": names.tree,
            "skills": skill_options,
            "currencies": CURRENCIES,
            "visibilities": VISIBILITY,
            "max_questions": MAX_QUESTIONS,
            "is_client": is_client,
            "needs_verification": verify,
            "project_id": project_id,
            "has_proposals": has_proposals,
            "field_errors": [key for key in form_errors if key != "form"],
            "attachments": attachments or [],
            **file_helpers(site),
        },
        status_code=status_code,
    )


@get("/projects/new", include_in_schema=False, name="projects:new")
async def new_project(request: AnyRequest, site: NamedDependency[Site]) -> Template:
    """The post-a-project form (or how to turn on the client role)."""
    require_principal(request)
    return await project_form_page(request, site, mode="new", form=empty_project_form())


@post("/projects/new", include_in_schema=False, name="projects:create")
async def create_project(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Save the form as a draft or publish it; on a mistake show it again with the input kept."""
    if principal_of(request) is None:
        return to_login("/projects/new")
    form = await request.form()
    values = project_form_values(form)
    publish = form_text(form, "action") != "draft"
    body, errors = project_body(values)
    status_code = 400
    async with site.db.reading() as session:
        user = await current_user(request, session, site)
        if not user.is_client:
            return await project_form_page(request, site, mode="new", form=values, status_code=403)
        if publish and needs_verification(site, user):
            errors["form"] = (
                "Verify your e-mail address before you publish: open the link we sent you. "
                "Meanwhile you can save the project as a draft."
            )
            status_code = 403
    data: schemas.ProjectIn | None = None
    if not errors:
        try:
            data = msgspec.convert({**body, "publish": publish}, schemas.ProjectIn)
        except msgspec.ValidationError as exc:
            errors.update(schema_errors(exc))
    checked = await check_chosen_files(site, form, errors)
    project_id = None
    if data is not None and not errors:
        async def create(session: AsyncSession, client: User) -> Project:
            nonlocal project_id
            project = await ProjectService(site).create(session, client, data)
            project_id = project.id
            return project

        status_code = await save_with_files(request, site, checked, errors, create) or status_code
    if errors or project_id is None:
        return await project_form_page(
            request, site, mode="new", form=values, errors=errors, status_code=status_code
        )
    return redirect(f"/projects/{project_id}?done={'posted' if publish else 'draft'}")


@get("/projects/{project_id:uuid}/edit", include_in_schema=False, name="projects:edit")
async def edit_project(
    request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """The project form filled with the saved project (drafts and open projects)."""
    principal = require_principal(request)
    async with site.db.reading() as session:
        project = await ProjectService(site).owned(session, project_id, principal.user_id)
        if project.status not in (ProjectStatus.DRAFT, ProjectStatus.OPEN):
            return redirect(f"/projects/{project_id}")
        values = project_form_of(project, await load_names(session, site))
        has_proposals = project.status == ProjectStatus.OPEN and project.proposal_count > 0
        attachments = (await attachments_of(session, "project", [project.id])).get(project.id, [])
    return await project_form_page(
        request,
        site,
        mode="edit",
        form=values,
        project_id=project_id,
        has_proposals=has_proposals,
        attachments=attachments,
    )


@post("/projects/{project_id:uuid}/edit", include_in_schema=False, name="projects:update")
async def update_project(
    request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Save the edited project; on a mistake show the form again with the input kept."""
    if principal_of(request) is None:
        return to_login(f"/projects/{project_id}/edit")
    form = await request.form()
    values = project_form_values(form)
    body, errors = project_body(values)
    status_code = 400
    data: schemas.ProjectUpdate | None = None
    if not errors:
        try:
            data = msgspec.convert(body, schemas.ProjectUpdate)
        except msgspec.ValidationError as exc:
            errors.update(schema_errors(exc))
    service = ProjectService(site)
    checked = await check_chosen_files(site, form, errors)
    if data is not None and not errors:
        async def update(session: AsyncSession, client: User) -> Project:
            project = await service.owned(session, project_id, client.id, lock=True)
            await service.update(session, project, data)
            return project

        status_code = await save_with_files(request, site, checked, errors, update) or status_code
    if errors:
        async with site.db.reading() as session:
            project = await service.owned(
                session, project_id, (await current_user(request, session, site)).id
            )
            has_proposals = project.status == ProjectStatus.OPEN and project.proposal_count > 0
            attachments = (await attachments_of(session, "project", [project.id])).get(project.id, [])
        return await project_form_page(
            request,
            site,
            mode="edit",
            form=values,
            errors=errors,
            project_id=project_id,
            has_proposals=has_proposals,
            attachments=attachments,
            status_code=status_code,
        )
    return redirect(f"/projects/{project_id}?done=saved")


# ---------------------------------------------------------------------------
# The project page
# ---------------------------------------------------------------------------


@dataclass
class PageState:
    """What a project page shows besides the project: a form that failed, notices, the
    comparison's sort and filter."""

    notices: list[tuple[str, str]] = field(default_factory=list)
    bid_form: dict[str, Any] | None = None
    bid_errors: dict[str, str] = field(default_factory=dict)
    editing: bool = False
    """The developer edits their submitted proposal."""
    invite_form: dict[str, str] = field(default_factory=dict)
    invite_errors: dict[str, str] = field(default_factory=dict)
    card_errors: dict[str, str] = field(default_factory=dict)
    """Proposal id → what went wrong with an action on it."""
    sort: str = "newest"
    status: str = ""


def empty_bid_form(questions: int) -> dict[str, Any]:
    return {
        "cover_letter": "",
        "amount": "",
        "duration_days": "",
        "milestones": [{"title": "", "amount": ""} for _ in range(MAX_MILESTONE_ROWS)],
        "answers": [""] * questions,
    }


def bid_form_of(proposal: schemas.ProposalOut, questions: int) -> dict[str, Any]:
    """The bid form filled with a saved proposal."""
    rows = [{"title": m.title, "amount": money_input(m.amount)} for m in proposal.milestones][
        :MAX_MILESTONE_ROWS
    ]
    answers = list(proposal.answers)[:questions]
    return {
        "cover_letter": proposal.cover_letter,
        "amount": money_input(proposal.amount),
        "duration_days": str(proposal.duration_days),
        "milestones": rows + [{"title": "", "amount": ""} for _ in range(MAX_MILESTONE_ROWS - len(rows))],
        "answers": answers + [""] * (questions - len(answers)),
    }


def bid_form_values(form: FormMultiDict, questions: int) -> dict[str, Any]:
    titles = [t if isinstance(t, str) else "" for t in form.getall("milestone_title", [])]
    amounts = [a if isinstance(a, str) else "" for a in form.getall("milestone_amount", [])]
    rows = [
        {"title": titles[i] if i < len(titles) else "", "amount": amounts[i] if i < len(amounts) else ""}
        for i in range(MAX_MILESTONE_ROWS)
    ]
    return {
        "cover_letter": form_text(form, "cover_letter"),
        "amount": form_text(form, "amount"),
        "duration_days": form_text(form, "duration_days"),
        "milestones": rows,
        "answers": [form_text(form, f"answer_{i}") for i in range(1, questions + 1)],
    }


def bid_body(values: dict[str, Any], *, currency: str, hourly: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The proposal body a bid form describes, and what is wrong with it."""
    errors: dict[str, str] = {}
    if len(values["cover_letter"].strip()) < 20:
        errors["cover_letter"] = "Write at least 20 characters: how you would do the work and why you fit."
    money, problem = parse_rate(values["amount"], currency, maximum=MAX_AMOUNT_MINOR)
    amount = 0
    if problem:
        errors["amount"] = problem
    elif money is None:
        errors["amount"] = "Enter your hourly rate." if hourly else "Enter your total price."
    elif money["amount"] < 1:
        errors["amount"] = "Enter an amount above zero."
    else:
        amount = money["amount"]
    days = values["duration_days"].strip()
    if not days.isdigit() or not 1 <= int(days) <= 730:
        errors["duration_days"] = "Enter a number of days between 1 and 730, e.g. 14."
    milestones: list[dict[str, Any]] = []
    for number, row in enumerate(values["milestones"], start=1):
        title, typed = row["title"].strip(), row["amount"].strip()
        if not title and not typed:
            continue
        if hourly:
            errors["milestones"] = "Hourly projects are billed by the hour, without a milestone plan."
            break
        part, wrong = parse_rate(typed, currency, maximum=MAX_AMOUNT_MINOR)
        if not title or part is None or wrong or part["amount"] < 1:
            errors["milestones"] = f"Milestone {number}: give it a title and an amount above zero."
            break
        milestones.append({"title": title, "amount": part["amount"]})
    if (
        milestones
        and amount
        and "milestones" not in errors
        and sum(m["amount"] for m in milestones) != amount
    ):
        planned = format_money(sum(m["amount"] for m in milestones), currency)
        errors["milestones"] = (
            f"The milestones add up to {planned}; they must add up to your total price "
            f"of {format_money(amount, currency)}."
        )
    for number, answer in enumerate(values["answers"], start=1):
        if not answer.strip():
            errors[f"answer_{number}"] = "Answer this question."
    body = {
        "cover_letter": values["cover_letter"].strip(),
        "amount": amount,
        "currency": currency,
        "duration_days": int(days) if days.isdigit() else 0,
        "milestones": milestones,
        "answers": [answer.strip() for answer in values["answers"]],
    }
    return body, errors


async def project_page(
    request: AnyRequest,
    site: Site,
    project_id: uuid.UUID,
    *,
    state: PageState | None = None,
    status_code: int = 200,
) -> Template:
    """``projects/detail.html`` as the viewer may see it: anyone, a developer (bid form or their
    proposal) or the client who posted it (actions, the proposals' comparison, invitations)."""
    state = state or PageState()
    principal = principal_of(request)
    viewer_id = principal.user_id if principal else None
    projects = ProjectService(site)
    proposals = ProposalService(site)
    values: dict[str, Any] = {}
    async with site.db.reading() as session:
        project = await projects.visible(session, project_id, viewer_id)
        out = await projects.out(session, project, viewer_id)
        names = await load_names(session, site)
        viewer = await session.get(User, viewer_id) if viewer_id else None
        if viewer is not None and viewer.status != UserStatus.ACTIVE:
            viewer = None
        questions = len(out.screening_questions)
        mine = None
        compare: list[schemas.ProposalOut] = []
        counts: Counter[str] = Counter()
        if out.is_owner:
            everything = await proposals.for_project(
                session, project, project.client_id, status=None, sort=state.sort
            )
            counts = Counter(p.status for p in everything)
            compare = [p for p in everything if not state.status or p.status == state.status]
            values["hired_contract_id"] = next((p.contract_id for p in everything if p.contract_id), None)
        elif out.my_proposal_id is not None:
            row = await session.get(Proposal, out.my_proposal_id)
            if row is not None:
                mine = await proposals.out(session, row, project)
        me = None
        if viewer is not None:
            me = {
                "id": viewer.id,
                "name": viewer.display_name,
                "is_client": viewer.is_client,
                "is_developer": viewer.is_developer,
                "needs_verification": needs_verification(site, viewer),
            }
        client = await session.get(User, project.client_id)
        values["client_since"] = client.created_at if client is not None else None
    bid_form = state.bid_form
    if bid_form is None:
        bid_form = (
            bid_form_of(mine, questions)
            if mine is not None and (state.editing or mine.status == ProposalStatus.WITHDRAWN)
            else empty_bid_form(questions)
        )
    notices = list(state.notices)
    # A proposal the client already shortlisted cannot change: show it, not the form (unless an
    # edit just failed, so its message shows next to the input).
    editing = (
        mine is not None
        and state.editing
        and (mine.status == ProposalStatus.SUBMITTED or bool(state.bid_errors))
    )
    if mine is not None and state.editing and not editing:
        notices.append(("info", f"This proposal is {mine.status}; it can no longer be edited."))
    if state.bid_errors.get("form") and mine is not None and not editing and mine.status != "withdrawn":
        notices.append(("error", state.bid_errors["form"]))  # the form is not shown: say it up top
    hourly = out.budget.type == "hourly"
    can_bid = out.status == ProjectStatus.OPEN and not out.is_owner
    return await render(
        request,
        site,
        "detail.html",
        {
            **helpers(names),
            **values,
            "project": out,
            "description_html": Markup(out.description_html),
            "hourly": hourly,
            "budget": format_budget(out.budget),
            "category": names.category(out.category),
            "skills_named": [names.skill(slug) for slug in out.skills],
            "me": me,
            "mine": mine,
            "mine_cover_html": Markup(mine.cover_letter_html) if mine else "",
            "can_bid": can_bid,
            "editing": editing,
            "bid_form": bid_form,
            "bid_errors": state.bid_errors,
            "invite_form": state.invite_form,
            "invite_errors": state.invite_errors,
            "card_errors": state.card_errors,
            "notices": notices,
            "proposals": [
                {"p": p, "cover_html": Markup(p.cover_letter_html), "match": round(p.skill_match * 100)}
                for p in compare
            ],
            "counts": counts,
            "total_proposals": sum(counts.values()),
            "sort": state.sort,
            "status_filter": state.status,
            "sorts": PROPOSAL_SORTS,
            "filters": PROPOSAL_FILTERS,
            "posted": time_ago(out.published_at) if out.published_at else "",
            "max_milestones": MAX_MILESTONE_ROWS,
            "currency_symbol": CURRENCY_SYMBOLS.get(out.budget.currency, ""),
            "editable": out.status in (ProjectStatus.DRAFT, ProjectStatus.OPEN),
            **file_helpers(site),
        },
        status_code=status_code,
    )


@get("/projects/{project_id:uuid}", include_in_schema=False, name="projects:detail")
async def show_project(
    request: AnyRequest,
    project_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
    done: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> Template:
    """A project; what else shows depends on who is looking."""
    state = PageState(
        notices=[_PROJECT_NOTICES[done]] if done in _PROJECT_NOTICES else [],
        sort=sort if sort in PROPOSAL_SORTS else "newest",
        status=status if status in PROPOSAL_FILTERS else "",
    )
    return await project_page(request, site, project_id, state=state)


@post("/projects/{project_id:uuid}/proposals", include_in_schema=False, name="projects:bid")
async def submit_bid(
    request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Send a proposal (or bid again after withdrawing)."""
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/projects/{project_id}")
    async with site.db.reading() as session:
        project = await ProjectService(site).visible(session, project_id, principal.user_id)
        questions, currency = len(project.screening_questions), project.currency
        hourly = project.budget_type == "hourly"
    form = await request.form()
    values = bid_form_values(form, questions)
    body, errors = bid_body(values, currency=currency, hourly=hourly)
    status_code = 400
    data: schemas.ProposalIn | None = None
    if not errors:
        try:
            data = msgspec.convert(body, schemas.ProposalIn)
        except msgspec.ValidationError as exc:
            errors.update(schema_errors(exc))
    checked = await check_chosen_files(site, form, errors)
    if data is not None and not errors:
        async def submit(session: AsyncSession, developer: User) -> Proposal:
            return await ProposalService(site).submit(session, developer, project_id, data)

        status_code = await save_with_files(request, site, checked, errors, submit) or status_code
    if errors:
        return await project_page(
            request,
            site,
            project_id,
            status_code=status_code,
            state=PageState(bid_form=values, bid_errors=errors),
        )
    return redirect(f"/projects/{project_id}?done=bid#my-proposal")


async def _proposal_project(site: Site, proposal_id: uuid.UUID, user_id: uuid.UUID) -> tuple[uuid.UUID, int]:
    """The project of a proposal its developer or client may see (404 otherwise), and how many
    screening questions it asks."""
    async with site.db.reading() as session:
        proposal = await ProposalService(site).visible(session, proposal_id, user_id)
        project = await session.get(Project, proposal.project_id)
        return proposal.project_id, len(project.screening_questions) if project else 0


@get("/proposals/{proposal_id:uuid}/edit", include_in_schema=False, name="projects:proposal-edit")
async def edit_proposal(
    request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """The project page with the developer's proposal in the bid form."""
    principal = require_principal(request)
    project_id, _ = await _proposal_project(site, proposal_id, principal.user_id)
    return await project_page(request, site, project_id, state=PageState(editing=True))


@post("/proposals/{proposal_id:uuid}/edit", include_in_schema=False, name="projects:proposal-update")
async def update_proposal(
    request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Save the edited proposal (until the client shortlists it)."""
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/proposals/{proposal_id}/edit")
    project_id, questions = await _proposal_project(site, proposal_id, principal.user_id)
    async with site.db.reading() as session:
        project = await session.get(Project, project_id)
        assert project is not None
        currency, hourly = project.currency, project.budget_type == "hourly"
    form = await request.form()
    values = bid_form_values(form, questions)
    body, errors = bid_body(values, currency=currency, hourly=hourly)
    status_code = 400
    data: schemas.ProposalUpdate | None = None
    if not errors:
        try:
            body.pop("currency")
            data = msgspec.convert(body, schemas.ProposalUpdate)
        except msgspec.ValidationError as exc:
            errors.update(schema_errors(exc))
    checked = await check_chosen_files(site, form, errors)
    if data is not None and not errors:
        async def edit(session: AsyncSession, developer: User) -> Proposal:
            return await ProposalService(site).edit(session, developer, proposal_id, data)

        status_code = await save_with_files(request, site, checked, errors, edit) or status_code
    if errors:
        return await project_page(
            request,
            site,
            project_id,
            status_code=status_code,
            state=PageState(bid_form=values, bid_errors=errors, editing=True),
        )
    return redirect(f"/projects/{project_id}?done=bid-edited#my-proposal")


async def remove_file(
    request: AnyRequest,
    site: Site,
    load: LoadOwner,
    attachment_id: uuid.UUID,
    *,
    project_id: uuid.UUID,
    done: str,
) -> Page:
    """Remove a file, then go to ``done``; a refusal shows on the project page."""
    try:
        await AttachmentService(site).remove(load, attachment_id)
    except HTTPException as exc:
        if not refused(exc):
            raise
        state = PageState(notices=[("error", str(exc.detail))])
        return await project_page(request, site, project_id, state=state, status_code=exc.status_code)
    return redirect(done)


@post(
    "/projects/{project_id:uuid}/attachments/{attachment_id:uuid}/delete",
    include_in_schema=False,
    name="projects:attachment-delete",
)
async def remove_project_file(
    request: AnyRequest,
    project_id: FromPath[uuid.UUID],
    attachment_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
) -> Page:
    """Remove a file from your project (a button on the edit form)."""
    if principal_of(request) is None:
        return to_login(f"/projects/{project_id}/edit")
    load = owned_project(request, site, project_id)
    done = f"/projects/{project_id}/edit#attachments"
    return await remove_file(request, site, load, attachment_id, project_id=project_id, done=done)


@post(
    "/proposals/{proposal_id:uuid}/attachments/{attachment_id:uuid}/delete",
    include_in_schema=False,
    name="projects:proposal-attachment-delete",
)
async def remove_proposal_file(
    request: AnyRequest,
    proposal_id: FromPath[uuid.UUID],
    attachment_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
) -> Page:
    """Remove a file from your proposal (a button on the bid form while you edit it)."""
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/proposals/{proposal_id}/edit")
    project_id, _ = await _proposal_project(site, proposal_id, principal.user_id)
    load = editable_proposal(request, site, proposal_id)
    done = f"/proposals/{proposal_id}/edit#bid"
    return await remove_file(request, site, load, attachment_id, project_id=project_id, done=done)


_DONE = {"withdraw": "withdrawn", "shortlist": "shortlisted", "decline": "declined"}


async def _proposal_action(
    request: AnyRequest,
    site: Site,
    proposal_id: uuid.UUID,
    action: str,
    *,
    message: str = "",
    confirmed: bool = True,
) -> Page:
    """Withdraw (developer), shortlist, decline or accept (client); errors show on the project page."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/dashboard")
    project_id, _ = await _proposal_project(site, proposal_id, principal.user_id)
    service = ProposalService(site)
    problem, status_code = "", 400
    contract_id = None
    if not confirmed:
        problem = "Tick the box to confirm that you want to hire this developer."
    else:
        try:
            async with site.db.transaction() as session:
                user = await current_user(request, session, site)
                if action == "withdraw":
                    await service.withdraw(session, user, proposal_id)
                elif action == "shortlist":
                    await service.shortlist(session, user, proposal_id)
                elif action == "decline":
                    await service.decline(session, user, proposal_id, message[:2000])
                else:
                    contract_id = (await service.accept(session, user, proposal_id)).id
        except HTTPException as exc:
            if not refused(exc):
                raise
            problem = next(iter(plain_errors(errors_of(exc)).values()))
            status_code = exc.status_code
    if problem:
        state = PageState(card_errors={str(proposal_id): problem})
        if action == "withdraw" or status_code == 403:  # no proposal card of theirs to show it on
            state = PageState(notices=[("error", problem)])
        return await project_page(request, site, project_id, state=state, status_code=status_code)
    if contract_id is not None:
        return redirect(f"/contracts/{contract_id}?hired=1")
    anchor = "#my-proposal" if action == "withdraw" else f"#proposal-{proposal_id}"
    return redirect(f"/projects/{project_id}?done={_DONE[action]}{anchor}")


@post("/proposals/{proposal_id:uuid}/withdraw", include_in_schema=False, name="projects:proposal-withdraw")
async def withdraw_proposal(
    request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _proposal_action(request, site, proposal_id, "withdraw")


@post("/proposals/{proposal_id:uuid}/shortlist", include_in_schema=False, name="projects:proposal-shortlist")
async def shortlist_proposal(
    request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _proposal_action(request, site, proposal_id, "shortlist")


@post("/proposals/{proposal_id:uuid}/decline", include_in_schema=False, name="projects:proposal-decline")
async def decline_proposal(
    request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    message = form_text(await request.form(), "message")
    return await _proposal_action(request, site, proposal_id, "decline", message=message)


@post("/proposals/{proposal_id:uuid}/accept", include_in_schema=False, name="projects:proposal-accept")
async def accept_proposal(
    request: AnyRequest, proposal_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Hire: only with the confirmation box ticked; then the new contract's page."""
    confirmed = form_text(await request.form(), "confirm") == "yes"
    return await _proposal_action(request, site, proposal_id, "accept", confirmed=confirmed)


async def _project_action(request: AnyRequest, site: Site, project_id: uuid.UUID, action: str) -> Page:
    """Publish, close or cancel; a refusal shows on the project page."""
    if principal_of(request) is None:
        return to_login(f"/projects/{project_id}")
    service = ProjectService(site)
    try:
        async with site.db.transaction() as session:
            client = await current_user(request, session, site)
            project = await service.owned(session, project_id, client.id, lock=True)
            if action == "publish":
                await service.publish(session, client, project)
            else:
                await service.close(session, project, target=ProjectStatus(action))
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await project_page(
            request,
            site,
            project_id,
            status_code=exc.status_code,
            state=PageState(notices=[("error", str(exc.detail))]),
        )
    return redirect(f"/projects/{project_id}?done={'published' if action == 'publish' else action}")


@post("/projects/{project_id:uuid}/publish", include_in_schema=False, name="projects:publish")
async def publish_project(
    request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _project_action(request, site, project_id, "publish")


@post("/projects/{project_id:uuid}/close", include_in_schema=False, name="projects:close")
async def close_project(
    request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _project_action(request, site, project_id, ProjectStatus.CLOSED)


@post("/projects/{project_id:uuid}/cancel", include_in_schema=False, name="projects:cancel")
async def cancel_project(
    request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _project_action(request, site, project_id, ProjectStatus.CANCELLED)


@post("/projects/{project_id:uuid}/invites", include_in_schema=False, name="projects:invite")
async def invite_developer(
    request: AnyRequest, project_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Invite a developer by profile link or id."""
    if principal_of(request) is None:
        return to_login(f"/projects/{project_id}")
    form = await request.form()
    values = {"developer": form_text(form, "developer"), "message": form_text(form, "message")}
    errors: dict[str, str] = {}
    status_code = 400
    developer_id = developer_id_in(values["developer"])
    if developer_id is None:
        errors["developer"] = "Paste the developer's profile link (…/users/…) or their id."
    elif len(values["message"]) > 2000:
        errors["message"] = "Use at most 2000 characters."
    else:
        try:
            async with site.db.transaction() as session:
                client = await current_user(request, session, site)
                service = ProjectService(site)
                project = await service.owned(session, project_id, client.id)
                await service.invite(
                    session, project, schemas.InviteIn(developer_id=developer_id, message=values["message"])
                )
        except HTTPException as exc:
            if not refused(exc):
                raise
            found = plain_errors(errors_of(exc, default_field="developer"))
            errors["developer"] = found.get("developer_id") or next(iter(found.values()))
            status_code = exc.status_code
    if errors:
        return await project_page(
            request,
            site,
            project_id,
            status_code=status_code,
            state=PageState(invite_form=values, invite_errors=errors),
        )
    return redirect(f"/projects/{project_id}?done=invited")


PAGE_ROUTES: list[Any] = [
    new_project,
    create_project,
    edit_project,
    update_project,
    show_project,
    submit_bid,
    edit_proposal,
    update_proposal,
    remove_project_file,
    remove_proposal_file,
    withdraw_proposal,
    shortlist_proposal,
    decline_proposal,
    accept_proposal,
    publish_project,
    close_project,
    cancel_project,
    invite_developer,
]
"""The project pages the projects plugin registers."""
