"""The signed-in person's dashboard: their projects and proposals on each side, invitations,
contracts and, for developers, the services they offer."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template
from sqlalchemy import func, select

from mercato.core.accounts.forms import AnyRequest
from mercato.core.accounts.models import User
from mercato.core.accounts.routes import current_user, require_principal
from mercato.core.catalog.display import load_names, needs_verification
from mercato.core.contracts.services import ContractService
from mercato.core.listings.models import ListingStatus
from mercato.core.listings.pages import SERVICE_STATUS_LABELS
from mercato.core.listings.services import ListingService
from mercato.core.projects import schemas
from mercato.core.projects.models import ProjectStatus, Proposal, ProposalStatus
from mercato.core.projects.pages import card, helpers, render
from mercato.core.projects.proposals import ProposalService
from mercato.core.projects.services import ProjectService
from mercato.core.site import Site


@get("/dashboard", include_in_schema=False, name="projects:dashboard")
async def dashboard(request: AnyRequest, site: NamedDependency[Site]) -> Template:
    """What needs the signed-in person's attention: their projects and proposals on each side,
    invitations, the services they offer and contracts."""
    require_principal(request)
    projects = ProjectService(site)
    proposals = ProposalService(site)
    listings = ListingService(site)
    # Listings are a plugin of their own: a site may turn them off.
    sells = site.plugins.pm.has_plugin("listings")
    async with site.db.reading() as session:
        user = await current_user(request, session, site)
        names = await load_names(session, site)
        owned = await projects.mine(session, user.id)
        per_status: dict[uuid.UUID, Counter[str]] = {p.id: Counter() for p in owned}
        if owned:
            rows = await session.execute(
                select(Proposal.project_id, Proposal.status, func.count())
                .where(Proposal.project_id.in_(list(per_status)))
                .group_by(Proposal.project_id, Proposal.status)
            )
            for project_id, status, count in rows:
                per_status[project_id][status] = count
        shortlist: list[schemas.ProposalOut] = []
        for project in owned:
            if project.status == ProjectStatus.OPEN and per_status[project.id]["shortlisted"]:
                shortlist += await proposals.for_project(
                    session, project, user.id, status="shortlisted", sort="price"
                )
        contract_of: dict[uuid.UUID, uuid.UUID] = {}
        if owned:
            hired = select(Proposal.project_id, Proposal.contract_id).where(
                Proposal.project_id.in_(list(per_status)), Proposal.contract_id.is_not(None)
            )
            contract_of = {row.project_id: row.contract_id for row in await session.execute(hired)}
        groups: dict[str, list[dict[str, Any]]] = {"open": [], "draft": [], "hired": [], "ended": []}
        for project in owned:
            out = await projects.out(session, project, user.id)
            group = project.status if project.status in groups else "ended"
            groups[group].append(
                {
                    **card(out, names),
                    "counts": per_status[project.id],
                    "contract_id": contract_of.get(project.id),
                }
            )
        mine = await proposals.mine(session, user.id)
        invitations = [
            card(await projects.out(session, p, user.id), names)
            for p in await projects.invitations(session, user.id)
        ]
        contracts = (await ContractService().list_for(session, user.id, limit=10, cursor=None)).items
        party_ids = {c.client_id for c in contracts} | {c.developer_id for c in contracts}
        people: dict[uuid.UUID, str] = {}
        if party_ids:
            query = select(User.id, User.display_name).where(User.id.in_(list(party_ids)))
            people = {row.id: row.display_name for row in await session.execute(query)}
        my_listings = await listings.mine(session, user.id) if sells else []
        offered = await listings.outs(session, my_listings, user.id)
        is_client, is_developer, me_id = user.is_client, user.is_developer, user.id
        verify = needs_verification(site, user)
    live = [p for p in mine if p.status in (ProposalStatus.SUBMITTED, ProposalStatus.SHORTLISTED)]
    won = [p for p in mine if p.status == ProposalStatus.ACCEPTED]
    past = [p for p in mine if p.status in (ProposalStatus.DECLINED, ProposalStatus.WITHDRAWN)]
    services = [s for s in offered if s.status != ListingStatus.ARCHIVED]
    archived = [s for s in offered if s.status == ListingStatus.ARCHIVED]
    return await render(
        request,
        site,
        "dashboard.html",
        {
            **helpers(names),
            "show_client": is_client or bool(owned),
            "show_developer": is_developer or bool(mine) or bool(offered),
            "groups": groups,
            "owned_count": len(owned),
            "shortlist": shortlist,
            "live": live,
            "won": won,
            "past": past,
            "invitations": invitations,
            "sells": sells,
            "services": services,
            "archived_services": archived,
            "service_status_labels": SERVICE_STATUS_LABELS,
            "contracts": contracts,
            "people": people,
            "needs_verification": verify,
            "me_id": me_id,
        },
    )
