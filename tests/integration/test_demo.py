"""The demo marketplace: seeded through the domain services, deterministic, idempotent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from mercato.core.accounts.models import User
from mercato.core.contracts.models import Contract, Milestone
from mercato.core.demo import DEMO_CLIENT, DEMO_DEVELOPER, DEMO_PASSWORD, prepare_demo, seed_demo
from mercato.core.ledger.services import Ledger
from mercato.core.listings.models import Listing
from mercato.core.moderation.models import Report
from mercato.core.projects.models import Project, Proposal
from tests.conftest import _with_database


async def counts(site: Any) -> dict[str, Any]:
    async with site.db.reading() as session:
        projects = dict(
            (await session.execute(select(Project.status, func.count()).group_by(Project.status))).all()
        )
        proposals = dict(
            (await session.execute(select(Proposal.status, func.count()).group_by(Proposal.status))).all()
        )
        users = await session.scalar(select(func.count()).select_from(User))
        contracts = await session.scalar(select(func.count()).select_from(Contract))
        milestones = dict(
            (await session.execute(select(Milestone.status, func.count()).group_by(Milestone.status))).all()
        )
        problems = await Ledger().verify(session)
        services = dict(
            (await session.execute(select(Listing.status, func.count()).group_by(Listing.status))).all()
        )
        reports = dict(
            (await session.execute(select(Report.subject_type, Report.status))).all()
        )
        admins = await session.scalar(select(func.count()).select_from(User).where(User.is_admin.is_(True)))
        titles = list(
            (await session.execute(select(Project.title).order_by(Project.title).limit(3))).scalars()
        )
    return {
        "projects": projects,
        "proposals": proposals,
        "users": users,
        "contracts": contracts, "services": services, "milestones": milestones, "ledger_problems": problems,
        "titles": titles, "reports": reports, "admins": admins,
    }


async def test_demo_seeds_every_state_once_and_the_same_way(
    sites: Any,
    migrated_settings: Any,
    make_settings: Any,
    databases: Any,
) -> None:
    site = await sites.start(migrated_settings, background=False)
    await prepare_demo(site)
    seeded = await counts(site)
    other_settings = make_settings()
    other = await sites.start(
        _with_database(other_settings, await databases.create_migrated(other_settings)), background=False
    )
    await prepare_demo(other)
    assert await counts(other) == seeded, "the same seed gives the same marketplace"
    assert seeded["users"] == 61
    assert seeded["admins"] == 1
    assert seeded["reports"] == {"listing": "open", "project": "open"}, "the moderation queue has work"
    assert set(seeded["projects"]) == {"open", "hired", "closed", "draft", "cancelled"}
    assert set(seeded["proposals"]) == {"submitted", "shortlisted", "accepted", "declined", "withdrawn"}
    assert seeded["services"] == {"published": 72, "paused": 8}
    hired = seeded["projects"]["hired"]
    assert hired == seeded["proposals"]["accepted"]
    reviewed = 16  # the reviews plugin's demo: service orders delivered, completed and reviewed
    assert seeded["contracts"] == hired + 20 + reviewed, "every hire and every service order has a contract"
    moving = {status: seeded["milestones"].get(status) for status in ("funded", "submitted", "approved")}
    assert moving == {"funded": 3, "submitted": 3, "approved": 3 + reviewed}, "escrow at work (sandbox)"
    assert seeded["ledger_problems"] == []

    await seed_demo(site)  # an existing site is left alone
    assert await counts(site) == seeded

    from mercato.core.accounts.services import AccountService

    async with site.db.transaction() as session:
        for email in (DEMO_CLIENT, DEMO_DEVELOPER):
            user = await AccountService(site).authenticate(session, email, DEMO_PASSWORD)
            assert user is not None, email
            assert user.email_verified, email
