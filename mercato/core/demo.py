"""Seed data for ``mercato demo``: a believable developer marketplace, the same every time.

Everything is made through the domain services (so every invariant and event holds) from a
fixed Faker seed: developers with skills and portfolios, clients, projects across the
category tree in every state, and proposals in every state. Two accounts with a known
password let a newcomer look at both sides at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import structlog
from faker import Faker

from mercato.core.accounts.models import Profile, User
from mercato.core.accounts.profiles import ProfileService
from mercato.core.accounts.schemas import MeUpdate, MoneyIn, PortfolioItemIn
from mercato.core.accounts.services import AccountService
from mercato.core.db import utcnow
from mercato.core.projects import schemas as project_schemas
from mercato.core.projects.models import ProjectStatus
from mercato.core.projects.proposals import ProposalService
from mercato.core.projects.services import ProjectService
from mercato.core.security.passwords import hash_password

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

log = structlog.get_logger("mercato.demo")

DEMO_PASSWORD = "mercato demo password"
"""The password of every demo account (shown by ``mercato demo``)."""
DEMO_CLIENT = "client@demo.mercato.dev"
DEMO_DEVELOPER = "developer@demo.mercato.dev"
DEMO_ADMIN = "admin@demo.mercato.dev"
SEED = 2026


@dataclass(frozen=True)
class Track:
    """A kind of work: the categories it belongs to, the skills it uses, what people ask for."""

    categories: tuple[str, ...]
    skills: tuple[str, ...]
    headline: str
    things: tuple[str, ...]


TRACKS = (
    Track(
        ("web-backend", "web-fullstack"),
        ("python", "django", "fastapi", "postgresql", "redis", "docker"),
        "Back-end engineer",
        ("a REST API", "a billing service", "a webhooks pipeline", "an admin back office"),
    ),
    Track(
        ("web-frontend", "web-fullstack"),
        ("typescript", "react", "nextjs", "tailwind-css", "vuejs", "css"),
        "Front-end engineer",
        ("a dashboard UI", "a marketing site", "a design-system component library", "a checkout flow"),
    ),
    Track(
        ("mobile-ios", "mobile-android", "mobile-cross-platform"),
        ("swift", "kotlin", "flutter", "react-native", "swiftui", "push-notifications"),
        "Mobile developer",
        ("an iOS app", "an Android app", "a cross-platform booking app", "offline sync"),
    ),
    Track(
        ("ml-ai", "data-engineering", "data-analytics"),
        ("python", "machine-learning", "pytorch", "llm", "rag", "bigquery", "snowflake"),
        "Data & ML engineer",
        ("a recommendation model", "an ETL pipeline", "a RAG chatbot over our docs", "a churn dashboard"),
    ),
    Track(
        ("devops-infrastructure", "devops-ci-cd", "devops-sre"),
        ("aws", "kubernetes", "terraform", "docker", "github-actions", "gcp"),
        "DevOps engineer",
        (
            "a Kubernetes migration",
            "a CI/CD pipeline",
            "Terraform for our AWS account",
            "monitoring and alerting",
        ),
    ),
    Track(
        ("qa-automation", "qa-performance"),
        ("playwright", "cypress", "pytest", "test-automation", "e2e-testing"),
        "QA automation engineer",
        ("an end-to-end test suite", "load tests for our API", "a flaky-test clean-up"),
    ),
    Track(
        ("security-audit", "security-hardening"),
        ("application-security", "penetration-testing", "owasp", "oauth"),
        "Security engineer",
        ("a penetration test", "an OAuth review", "SOC 2 hardening"),
    ),
    Track(
        ("design-ui-ux", "design-systems"),
        ("figma", "ui-design", "ux-design", "design-systems", "prototyping"),
        "Product designer",
        ("app screens in Figma", "a design system", "a usability review"),
    ),
)


async def prepare_demo(site: Site) -> None:
    """Seed the catalogues and the demo data (``mercato demo`` runs it before serving)."""
    from mercato.core.accounts.profiles import sync_skills
    from mercato.core.catalog.services import sync_categories

    async with site.db.transaction() as session:
        await sync_categories(session)
        await sync_skills(session)
    await seed_demo(site)


async def seed_demo(
    site: Site, *, developers: int = 40, clients: int = 20, projects: int = 150, services: int = 80
) -> None:
    """Fill an empty demo site. Does nothing when it already has accounts."""
    async with site.db.transaction() as session:
        if (await session.execute(User.__table__.select().limit(1))).first() is not None:
            return
        await _seed(
            site, session, developers=developers, clients=clients, projects=projects, services=services
        )
        await _spread_signups(session)
    await _seed_money(site)
    await _seed_reports(site)
    await site.plugins.seed_demo_data(site)
    log.info("demo data seeded", developers=developers, clients=clients, projects=projects, services=services)


async def _seed_money(site: Site, contracts: int = 9) -> None:
    """Set some contracts' money moving as their parties would, through the sandbox gateway:
    the demo client's and the demo developer's first, so both logins see escrow at work. Of
    each three, one milestone is funded, one submitted, one approved (its payment pending)."""
    if "sandbox" not in site.gateways:
        return
    from sqlalchemy import select

    from mercato.core.contracts.milestones import MilestoneService
    from mercato.core.contracts.models import Contract, Milestone

    demo_people = select(User.id).where(User.email.in_([DEMO_CLIENT, DEMO_DEVELOPER]))
    async with site.db.reading() as session:
        chosen = (await session.execute(
            select(Contract.id, Contract.client_id, Contract.developer_id)
            .order_by((Contract.client_id.in_(demo_people) | Contract.developer_id.in_(demo_people)).desc(),
                      Contract.created_at, Contract.id)
            .limit(contracts)
        )).all()
        first = {
            row.contract_id: row.id
            for row in await session.execute(
                select(Milestone.contract_id, Milestone.id).where(
                    Milestone.contract_id.in_([c.id for c in chosen]), Milestone.position == 0)
            )
        }
    service = MilestoneService(site)
    for index, contract in enumerate(chosen):
        milestone_id = first[contract.id]
        await service.fund(milestone_id, contract.client_id, "4242 4242 4242 4242", "sandbox")
        if index % 3 == 0:
            continue
        async with site.db.transaction() as session:
            await service.submit(session, milestone_id, contract.developer_id,
                                 "The first part is done: it runs on staging; notes are in the README.")
        if index % 3 == 1:
            continue
        async with site.db.transaction() as session:
            await service.release(session, milestone_id, contract.client_id)


async def _spread_signups(session: AsyncSession, days: int = 120) -> None:
    """People joined over the last ``days`` (the admin's signup chart, "member since"), not all
    at the moment the demo started; the same dates every time, relative to today."""
    from sqlalchemy import select, update

    now = utcnow()
    rng = random.Random(SEED + 1)  # its own: the rest of the demo's draws stay as they were
    for user_id in (await session.scalars(select(User.id).order_by(User.email))).all():
        joined = now - timedelta(days=rng.uniform(1, days))
        await session.execute(update(User).where(User.id == user_id).values(created_at=joined))


async def _seed_reports(site: Site) -> None:
    """Two reports in the moderation queue, so the admin's dashboard has something to decide."""
    from sqlalchemy import select

    from mercato.core.listings.models import Listing, ListingStatus
    from mercato.core.moderation.reports import ReportService
    from mercato.core.projects.models import Project, ProjectStatus

    reports = ReportService(site)
    async with site.db.transaction() as session:
        client = await session.scalar(select(User).where(User.email == DEMO_CLIENT))
        developer = await session.scalar(select(User).where(User.email == DEMO_DEVELOPER))
        if client is None or developer is None:
            return
        listing = await session.scalar(
            select(Listing.id)
            .where(Listing.status == ListingStatus.PUBLISHED, Listing.developer_id != client.id)
            .order_by(Listing.created_at.desc(), Listing.id).limit(1))
        project = await session.scalar(
            select(Project.id).where(Project.status == ProjectStatus.OPEN, Project.visibility == "public",
                                     Project.client_id != developer.id)
            .order_by(Project.created_at.desc(), Project.id).limit(1))
        if listing is not None:
            await reports.create(session, client.id, "listing", listing, "scam",
                                 "The description asks buyers to pay by bank transfer outside the site.")
        if project is not None:
            await reports.create(session, developer.id, "project", project, "spam",
                                 "The same project is posted every day with a different title.")


async def _seed(
    site: Site, session: AsyncSession, *, developers: int, clients: int, projects: int, services: int
) -> None:
    fake = Faker()
    Faker.seed(SEED)
    rng = random.Random(SEED)
    accounts, profiles = AccountService(site), ProfileService(site)
    password_hash = await hash_password(DEMO_PASSWORD)  # hashed once: seeding stays quick

    async def person(email: str, name: str, roles: list[str]) -> User:
        user = await accounts.register(
            session, email=email, display_name=name, roles=roles, password=None, method="demo", verified=True
        )
        user.password_hash = password_hash
        return user

    devs: list[tuple[User, Track]] = []
    for index in range(developers):
        track = TRACKS[index % len(TRACKS)]
        email = DEMO_DEVELOPER if index == 0 else f"dev{index:02d}@demo.mercato.dev"
        user = await person(email, fake.name(), ["developer"])
        skills = rng.sample(track.skills, k=min(len(track.skills), rng.randint(3, 5)))
        await profiles.update(
            session,
            user,
            MeUpdate(
                headline=f"{track.headline} · {', '.join(skills[:3])}"[:120],
                bio="\n\n".join(fake.paragraphs(nb=2)),
                skills=skills,
                hourly_rate=MoneyIn(amount=rng.randrange(4000, 18000, 500)),
                location=f"{fake.city()}, {fake.country()}"[:120],
                timezone=rng.choice(
                    [
                        "Europe/Lisbon",
                        "Europe/Berlin",
                        "America/New_York",
                        "America/Sao_Paulo",
                        "Asia/Kolkata",
                        "Asia/Singapore",
                        "Africa/Lagos",
                    ]
                ),
                languages=rng.sample(["English", "Spanish", "Portuguese", "German", "French", "Hindi"], k=2),
                availability=rng.choice(["available", "available", "limited"]),
                github_url=f"https://github.com/{fake.user_name()}",
            ),
        )
        for _ in range(rng.randint(1, 2)):
            await profiles.add_item(
                session,
                user,
                PortfolioItemIn(
                    title=f"{rng.choice(track.things).capitalize()} for {fake.company()}"[:120],
                    description=fake.paragraph(nb_sentences=4),
                    skills=skills[:3],
                ),
            )
        devs.append((user, track))

    buyers: list[User] = []
    for index in range(clients):
        email = DEMO_CLIENT if index == 0 else f"client{index:02d}@demo.mercato.dev"
        user = await person(email, fake.name(), ["client"] if index else ["client", "developer"])
        profile = await session.get(Profile, user.id)
        if profile is not None:
            profile.headline = f"Hiring for {fake.company()}"[:120]
        buyers.append(user)

    admin = await accounts.register(session, email=DEMO_ADMIN, display_name="Ada Admin", roles=["client"],
                                    password=None, method="demo", verified=True, admin=True)
    admin.password_hash = password_hash

    project_service, proposal_service = ProjectService(site), ProposalService(site)
    statuses = (
        [ProjectStatus.OPEN] * 70
        + [ProjectStatus.HIRED] * 15
        + [ProjectStatus.CLOSED] * 7
        + [ProjectStatus.DRAFT] * 4
        + [ProjectStatus.CANCELLED] * 4
    )
    for index in range(projects):
        track = TRACKS[index % len(TRACKS)]
        client = buyers[index % len(buyers)]
        hourly = rng.random() < 0.25
        low = rng.randrange(3000, 9000, 500) if hourly else rng.randrange(50_000, 800_000, 10_000)
        status = statuses[index % len(statuses)]
        thing = rng.choice(track.things)
        project = await project_service.create(
            session,
            client,
            project_schemas.ProjectIn(
                title=f"{rng.choice(['Build', 'Design', 'Ship', 'Improve', 'Rescue'])} {thing} for "
                f"{fake.company()}"[:120],
                description="\n\n".join([f"We are looking for help with {thing}.", *fake.paragraphs(nb=3)]),
                category=rng.choice(track.categories),
                skills=rng.sample(track.skills, k=3),
                budget=project_schemas.Budget(
                    type="hourly" if hourly else "fixed", min=low, max=low * rng.choice([1, 2, 3])
                ),
                duration=rng.choice(["less_than_week", "1_4_weeks", "1_3_months", "3_6_months"]),
                experience_level=rng.choice(["entry", "intermediate", "expert"]),
                screening_questions=["Which similar project have you shipped?"] if rng.random() < 0.3 else [],
                publish=status != ProjectStatus.DRAFT,
            ),
        )
        if status == ProjectStatus.DRAFT:
            continue
        bidders = [d for d, t in devs if t is track and d.id != client.id]
        rng.shuffle(bidders)
        proposals = []
        for developer in bidders[: rng.randint(0, 5)]:
            amount = rng.randint(project.budget_min, project.budget_max) // 100 * 100 or project.budget_min
            proposals.append(
                await proposal_service.submit(
                    session,
                    developer,
                    project.id,
                    project_schemas.ProposalIn(
                        cover_letter="\n\n".join(fake.paragraphs(nb=2)),
                        amount=amount,
                        currency=project.currency,
                        duration_days=rng.randint(5, 90),
                        answers=[fake.sentence()] * len(project.screening_questions),
                    ),
                )
            )
        for proposal in proposals:
            roll = rng.random()
            if roll < 0.2:
                await proposal_service.shortlist(session, client, proposal.id)
            elif roll < 0.3:
                await proposal_service.decline(session, client, proposal.id, "Thanks, we went another way.")
            elif roll < 0.35:
                bidder = await session.get(User, proposal.developer_id)
                assert bidder is not None
                await proposal_service.withdraw(session, bidder, proposal.id)
        live = [p for p in proposals if p.status in ("submitted", "shortlisted")]
        if status == ProjectStatus.HIRED and live:
            await proposal_service.accept(session, client, live[0].id)
        elif status in (ProjectStatus.CLOSED, ProjectStatus.CANCELLED):
            await project_service.close(session, project, target=status)

    await _seed_services(site, session, fake, rng, devs, buyers, services)


async def _seed_services(
    site: Site,
    session: AsyncSession,
    fake: Faker,
    rng: random.Random,
    devs: list[tuple[User, Track]],
    buyers: list[User],
    count: int,
) -> None:
    """Services with one to three packages and an add-on; a few paused, some ordered."""
    from mercato.core.listings import schemas as listing_schemas
    from mercato.core.listings.orders import OrderService
    from mercato.core.listings.services import ListingService

    listings, orders = ListingService(site), OrderService(site)
    tiers: list[tuple[Literal["basic", "standard", "premium"], str, int]] = [
        ("basic", "Basic", 1),
        ("standard", "Standard", 2),
        ("premium", "Premium", 4),
    ]
    for index in range(count):
        owner, track = devs[index % len(devs)]
        thing = rng.choice(track.things)
        base = rng.randrange(5_000, 60_000, 2_500)
        days = rng.randint(2, 10)
        packages = [
            listing_schemas.PackageIn(
                tier=tier,
                name=name,
                price=base * factor,
                delivery_days=days * factor,
                revisions=min(factor, 3),
                description=f"{name}: {thing} for a {fake.bs()}."[:1000],
                features=[f"{factor * 2} review rounds", "Source code", "Deployment notes"][: factor + 1],
            )
            for tier, name, factor in tiers[: rng.randint(1, 3)]
        ]
        listing = await listings.create(
            session,
            owner,
            listing_schemas.ServiceIn(
                title=f"I will build {thing} with {', '.join(track.skills[:2])}"[:120],
                description="\n\n".join(
                    [f"I build {thing} for teams that need it done right.", *fake.paragraphs(nb=2)]
                ),
                category=rng.choice(track.categories),
                skills=list(track.skills[:3]),
                packages=packages,
                addons=[
                    listing_schemas.AddonIn(
                        kind="extra_fast",
                        title="Deliver two days sooner",
                        price=base // 2,
                        delivery_days_saved=1,
                    )
                ],
                faq=[listing_schemas.FaqIn(question="Do you sign an NDA?", answer="Yes, gladly.")],
                requirements=["What should it do, in a few sentences?"],
                publish=True,
            ),
        )
        if index % 10 == 9:
            await listings.pause(session, listing)
        elif index % 4 == 0:
            buyer = buyers[index % len(buyers)]
            await orders.place(
                session,
                buyer,
                listing.id,
                listing_schemas.OrderIn(
                    package=packages[0].tier, requirements=["A small first version, please."]
                ),
            )
