"""Which domain events notify whom, and in what words.

Each rule takes the event and a session (to look up titles) and returns the notifications to
make. The person who caused the event is never notified of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mercato.core.accounts.models import User
from mercato.core.catalog.display import format_money
from mercato.core.contracts.models import Contract, Milestone
from mercato.core.projects.models import Project

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.events import Event

CATEGORIES = {
    "projects": "Projects and proposals",
    "contracts": "Contracts and milestones",
    "payments": "Payments and payouts",
    "disputes": "Disputes",
    "messages": "Messages while you are away",
}
"""Categories people choose channels for, with their labels."""


@dataclass(frozen=True, slots=True)
class Draft:
    user_id: uuid.UUID
    category: str
    title: str
    url: str
    body: str = ""


Rule = Callable[["Event", "AsyncSession"], Awaitable[list[Draft]]]


def _id(payload: dict[str, Any], name: str) -> uuid.UUID:
    return uuid.UUID(str(payload[name]))


async def _project_title(session: AsyncSession, project_id: uuid.UUID) -> str:
    return (await session.scalar(select(Project.title).where(Project.id == project_id))) or "a project"


async def _milestone(session: AsyncSession, milestone_id: uuid.UUID) -> str:
    return (
        await session.scalar(select(Milestone.title).where(Milestone.id == milestone_id))
    ) or "a milestone"


def _other(payload: dict[str, Any], actor: uuid.UUID | None) -> uuid.UUID:
    """The contract party who did not act."""
    client, developer = _id(payload, "client_id"), _id(payload, "developer_id")
    return developer if actor == client else client


# -- projects and proposals ---------------------------------------------------------------
def _project_rule(to: str, title: str, url: str, body: str = "", body_field: str = "") -> Rule:
    """A rule for a project event: ``to`` names the payload's recipient id (``client`` or
    ``developer``); ``title`` and ``url`` are formatted with ``project`` (its title) and the
    payload's fields; the body is ``body``, or the payload's ``body_field``."""

    async def rule(event: Event, session: AsyncSession) -> list[Draft]:
        p = event.payload
        project = await _project_title(session, _id(p, "project_id"))
        text = str(p.get(body_field) or "") if body_field else body
        return [
            Draft(_id(p, f"{to}_id"), "projects", title.format(project=project, **p), url.format(**p), text)
        ]

    return rule


proposal_submitted = _project_rule(
    "client", "New proposal on “{project}”", "/projects/{project_id}#proposals"
)
proposal_shortlisted = _project_rule(
    "developer", "You are shortlisted for “{project}”", "/projects/{project_id}#my-proposal"
)
proposal_accepted = _project_rule(
    "developer",
    "You are hired for “{project}”",
    "/contracts/{contract_id}",
    body="The contract starts once the client funds the first milestone.",
)
proposal_declined = _project_rule(
    "developer",
    "Your proposal for “{project}” was declined",
    "/projects/{project_id}#my-proposal",
    body_field="message",
)
project_invited = _project_rule(
    "developer", "You are invited to bid on “{project}”", "/projects/{project_id}"
)


# -- contracts and milestones ---------------------------------------------------------------
def _milestone_url(p: dict[str, Any]) -> str:
    return f"/contracts/{p['contract_id']}#milestone-{p['milestone_id']}"


def _milestone_rule(to: str, title: str, category: str = "contracts", body_field: str = "") -> Rule:
    """A rule for a milestone event: ``to`` is ``client``, ``developer`` or ``other`` (the party
    who did not act); ``title`` is formatted with ``milestone`` and ``amount``."""

    async def rule(event: Event, session: AsyncSession) -> list[Draft]:
        p = event.payload
        user = _other(p, event.actor_id) if to == "other" else _id(p, f"{to}_id")
        name = await _milestone(session, _id(p, "milestone_id"))
        text = title.format(milestone=name, amount=format_money(int(p.get("amount", 0)), str(p["currency"])))
        body = str(p.get(body_field) or "") if body_field else ""
        return [Draft(user, category, text, _milestone_url(p), body)]

    return rule


async def milestone_approved(event: Event, session: AsyncSession) -> list[Draft]:
    p = event.payload
    name = await _milestone(session, _id(p, "milestone_id"))
    how = "automatically after the review period" if p.get("automatic") else "by the client"
    return [Draft(_id(p, "developer_id"), "contracts", f"“{name}” was approved {how}", _milestone_url(p))]


async def auto_approve_soon(event: Event, session: AsyncSession) -> list[Draft]:
    p = event.payload
    name = await _milestone(session, _id(p, "milestone_id"))
    return [
        Draft(
            _id(p, "client_id"),
            "contracts",
            f"“{name}” will be approved automatically in 2 days",
            _milestone_url(p),
            "Approve it, or ask for changes, before then: otherwise the developer is paid.",
        )
    ]


async def payment_released(event: Event, session: AsyncSession) -> list[Draft]:
    p = event.payload
    name = await _milestone(session, _id(p, "milestone_id"))
    net = int(p["amount"]) - int(p.get("fee", 0))
    return [
        Draft(
            _id(p, "developer_id"),
            "payments",
            f"{format_money(net, str(p['currency']))} released to you for “{name}”",
            "/wallet",
            "It becomes available to pay out after the payout hold.",
        )
    ]


async def milestone_settled(event: Event, session: AsyncSession) -> list[Draft]:
    p = event.payload
    name = await _milestone(session, _id(p, "milestone_id"))
    currency = str(p["currency"])
    text = (
        f"The dispute on “{name}” is settled: {format_money(int(p['released']), currency)} to the "
        f"developer, {format_money(int(p['refunded']), currency)} refunded"
    )
    return [
        Draft(user, "disputes", text, f"/disputes/{p['dispute_id']}", str(p.get("note") or ""))
        for user in (_id(p, "client_id"), _id(p, "developer_id"))
    ]


async def milestone_disputed(event: Event, session: AsyncSession) -> list[Draft]:
    p = event.payload
    name = await _milestone(session, _id(p, "milestone_id"))
    return [
        Draft(
            _other(p, event.actor_id),
            "disputes",
            f"A dispute was opened on “{name}”: please respond",
            f"/disputes/{p['dispute_id']}",
            str(p.get("reason") or ""),
        )
    ]


async def dispute_evidence(event: Event, session: AsyncSession) -> list[Draft]:
    p = event.payload
    contract = await session.get(Contract, _id(p, "contract_id"))
    if contract is None:
        return []
    author = _id(p, "author_id")
    other = contract.developer_id if author == contract.client_id else contract.client_id
    return [
        Draft(
            other,
            "disputes",
            f"New evidence in the dispute on “{contract.title}”",
            f"/disputes/{p['dispute_id']}",
        )
    ]


async def contract_ended(event: Event, session: AsyncSession) -> list[Draft]:
    p = event.payload
    title = (await session.scalar(select(Contract.title).where(Contract.id == _id(p, "contract_id")))) or ""
    verb = "completed" if event.type == "contract.completed" else "cancelled"
    return [
        Draft(
            _other(p, event.actor_id),
            "contracts",
            f"The contract “{title}” was {verb}",
            f"/contracts/{p['contract_id']}",
        )
    ]


# -- payouts --------------------------------------------------------------------------------
async def payout_settled(event: Event, session: AsyncSession) -> list[Draft]:
    p = event.payload
    amount = format_money(int(p["amount"]), str(p["currency"]))
    if event.type == "payout.paid":
        return [
            Draft(
                _id(p, "user_id"),
                "payments",
                f"Your payout of {amount} is on its way to your bank",
                "/wallet",
            )
        ]
    return [
        Draft(
            _id(p, "user_id"),
            "payments",
            f"Your payout of {amount} failed; the money is back in your wallet",
            "/wallet",
            str(p.get("message") or ""),
        )
    ]


async def message_sent(event: Event, session: AsyncSession) -> list[Draft]:
    """A chat message to someone who had no page of the site open."""
    p = event.payload
    if p.get("recipient_online"):
        return []
    sender = (
        await session.scalar(select(User.display_name).where(User.id == _id(p, "sender_id")))
    ) or "Someone"
    return [
        Draft(
            _id(p, "recipient_id"),
            "messages",
            f"New message from {sender}",
            f"/messages/{p['conversation_id']}",
            str(p.get("preview") or ""),
        )
    ]


async def review_published(event: Event, session: AsyncSession) -> list[Draft]:
    """The person reviewed hears of it once the review is public (both reviews are in, or the
    review window closed)."""
    p = event.payload
    author_id = _id(p, "author_id")
    author = (await session.scalar(select(User.display_name).where(User.id == author_id))) or "Someone"
    stars = int(p.get("rating", 0))
    return [
        Draft(
            _id(p, "subject_id"),
            "contracts",
            f"{author} reviewed you: {stars} star{'s' if stars != 1 else ''}",
            f"/contracts/{p['contract_id']}#reviews",
            str(p.get("comment") or ""),
        )
    ]


RULES: dict[str, Rule] = {
    "proposal.submitted": proposal_submitted,
    "proposal.shortlisted": proposal_shortlisted,
    "proposal.accepted": proposal_accepted,
    "proposal.declined": proposal_declined,
    "project.invited": project_invited,
    "milestone.funded": _milestone_rule(
        "developer", "“{milestone}” is funded: {amount} is in escrow, start the work"
    ),
    "milestone.submitted": _milestone_rule(
        "client", "“{milestone}” was submitted for your review", body_field="note"
    ),
    "milestone.changes_requested": _milestone_rule(
        "developer", "Changes were requested on “{milestone}”", body_field="message"
    ),
    "milestone.approved": milestone_approved,
    "milestone.auto_approve_soon": auto_approve_soon,
    "milestone.proposed": _milestone_rule(
        "other", "A new milestone was proposed: “{milestone}” for {amount}"
    ),
    "milestone.accepted": _milestone_rule("other", "Your milestone “{milestone}” was accepted"),
    "milestone.cancelled": _milestone_rule("other", "“{milestone}” was cancelled"),
    "milestone.disputed": milestone_disputed,
    "milestone.settled": milestone_settled,
    "payment.released": payment_released,
    "payout.paid": payout_settled,
    "payout.failed": payout_settled,
    "dispute.evidence_added": dispute_evidence,
    "contract.completed": contract_ended,
    "contract.cancelled": contract_ended,
    "message.sent": message_sent,
    "review.published": review_published,
}
"""Event type → the rule that makes its notifications."""
