"""Demo reviews for ``mercato demo`` (the ``seed_demo_data`` hook): finished work with both
parties' reviews, so profiles show a track record, the same every time.

A few developers (the demo developer first) sell their services to several clients; each
order is funded, delivered, approved and completed through the milestone service, as people
would, and then reviewed from both sides with varied ratings. One contract of the demo
client's keeps only the developer's review, still blind, so the demo shows the review form.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import TYPE_CHECKING, NamedTuple

import structlog
from sqlalchemy import select

from mercato.core.accounts.models import User
from mercato.core.contracts.milestones import MilestoneService
from mercato.core.contracts.models import Milestone, MilestoneStatus
from mercato.core.demo import DEMO_CLIENT, DEMO_DEVELOPER
from mercato.core.listings.models import Listing, ListingStatus
from mercato.core.listings.orders import OrderService
from mercato.core.listings.schemas import OrderIn

from .service import SUB_RATINGS, ReviewService

if TYPE_CHECKING:
    from mercato.core.site import Site

log = structlog.get_logger("mercato.reviews")

SEED = 2027
FEATURED_DEVELOPERS = 5
ORDERS_EACH = 3
CARD = "4242 4242 4242 4242"

OF_DEVELOPERS = {
    5: [
        "Delivered exactly what we asked for, a day early. The code is clean and well documented.",
        "Excellent work: clear questions up front, daily updates and a thorough hand-over.",
        "One of the best freelancers we have hired. Tests, a README and a short video walkthrough.",
        "Understood the problem quickly and suggested a simpler design that saved us weeks.",
        "Fast, careful and pleasant to work with. We will hire again for the next phase.",
    ],
    4: [
        "Solid work and good communication. A couple of small fixes were needed after delivery.",
        "Good result overall; the first estimate was optimistic but the final code is tidy.",
        "Reliable and responsive. Would have liked a bit more documentation, otherwise great.",
    ],
    3: [
        "The work got done, but it took longer than agreed and needed two rounds of changes.",
        "Decent code; communication was slow at times and we had to chase for updates.",
    ],
    2: ["Missed the deadline by a week and several requirements had to be reworked by our team."],
}
OF_CLIENTS = {
    5: [
        "Clear requirements, quick feedback and paid the moment the milestone was approved.",
        "A great client: knew what they wanted and answered questions the same day.",
        "Well-prepared brief and very respectful of my time. Happy to work together again.",
    ],
    4: [
        "Friendly and fair. The scope grew a little during the project, but we agreed on it quickly.",
        "Good client; feedback sometimes took a couple of days, payment was prompt.",
    ],
    3: ["The brief changed a few times mid-way, which slowed things down. Payment was on time."],
}
REPLIES = [
    "Thank you! It was a pleasure working on this with you.",
    "Thanks for the kind words — looking forward to the next project.",
    "Thanks for the honest feedback; I have since changed how I estimate work like this.",
]


class Person(NamedTuple):
    id: uuid.UUID
    email: str
    client: bool


def _rating(rng: random.Random) -> int:
    return rng.choices([5, 4, 3, 2], weights=[55, 30, 11, 4])[0]


def _sub_ratings(rng: random.Random, role: str, overall: int) -> dict[str, int]:
    return {name: max(1, min(5, overall + rng.choice([-1, 0, 0, 0, 1]))) for name in SUB_RATINGS[role]}


def _comment(rng: random.Random, texts: dict[int, list[str]], overall: int) -> str:
    band = max((k for k in texts if k <= overall), default=min(texts))
    return rng.choice(texts[band])


async def seed_reviews(site: Site) -> None:
    """Complete a few service orders per featured developer and review them both ways."""
    if "sandbox" not in site.gateways:
        return
    rng = random.Random(SEED)
    started = time.monotonic()
    async with site.db.reading() as session:
        people = {
            u.email: Person(u.id, u.email, "client" in u.roles) for u in await session.scalars(select(User))
        }
        listings = (
            await session.execute(
                select(Listing.id, Listing.developer_id)
                .where(Listing.status == ListingStatus.PUBLISHED)
                .order_by(Listing.created_at, Listing.id)
            )
        ).all()
    if DEMO_DEVELOPER not in people:
        return
    demo_dev, demo_client = people[DEMO_DEVELOPER], people.get(DEMO_CLIENT)
    clients = sorted(
        (p for p in people.values() if p.client and p.email != DEMO_CLIENT), key=lambda p: p.email
    )
    first_listing: dict[uuid.UUID, uuid.UUID] = {}
    for listing_id, developer_id in listings:
        first_listing.setdefault(developer_id, listing_id)
    others = [d for d in first_listing if d != demo_dev.id]
    featured = [demo_dev.id, *others[: FEATURED_DEVELOPERS - 1]]
    orders, milestones, reviews = OrderService(site), MilestoneService(site), ReviewService(site)
    written = 0
    for dev_index, developer_id in enumerate(featured):
        if developer_id not in first_listing:
            continue
        listing_id = first_listing[developer_id]
        buyers = rng.sample(clients, k=ORDERS_EACH)
        if developer_id == demo_dev.id and demo_client is not None:
            buyers = [demo_client, *buyers]
        elif dev_index == 1 and demo_client is not None:
            buyers = [demo_client, *buyers[1:]]
        for buyer in buyers:
            async with site.db.transaction() as session:
                buyer_row = await session.get(User, buyer.id)
                assert buyer_row is not None
                order = await orders.place(
                    session,
                    buyer_row,
                    listing_id,
                    OrderIn(package="basic", requirements=["A small first version, please."]),
                )
                contract_id = order.contract_id
                milestone_ids = list(
                    await session.scalars(select(Milestone.id).where(Milestone.contract_id == contract_id))
                )
            for milestone_id in milestone_ids:
                await milestones.fund(milestone_id, buyer.id, CARD, "sandbox")
                async with site.db.transaction() as session:
                    status = await session.scalar(
                        select(Milestone.status).where(Milestone.id == milestone_id)
                    )
                    if status != MilestoneStatus.FUNDED:
                        break
                    await milestones.submit(
                        session,
                        milestone_id,
                        developer_id,
                        "Delivered: the code, the notes and a short demo.",
                    )
                async with site.db.transaction() as session:
                    await milestones.release(session, milestone_id, buyer.id)
            else:
                async with site.db.transaction() as session:
                    await milestones.complete(session, contract_id, buyer.id)
                # the demo client's order from the demo developer waits for the client's review
                client_reviews = not (buyer is demo_client and developer_id == demo_dev.id)
                written += await _review_both(
                    site,
                    reviews,
                    rng,
                    contract_id,
                    buyer.id,
                    developer_id,
                    client_reviews=client_reviews,
                    reply=dev_index % 2 == 0,
                )
    log.info("demo reviews seeded", reviews=written, seconds=round(time.monotonic() - started, 2))


async def _review_both(
    site: Site,
    reviews: ReviewService,
    rng: random.Random,
    contract_id: uuid.UUID,
    client_id: uuid.UUID,
    developer_id: uuid.UUID,
    *,
    client_reviews: bool,
    reply: bool,
) -> int:
    """The developer reviews the client, then (usually) the client the developer: both publish."""
    count = 0
    async with site.db.transaction() as session:
        overall = _rating(rng) if rng.random() < 0.5 else 5
        await reviews.write(
            session,
            contract_id,
            developer_id,
            rating=overall,
            ratings=_sub_ratings(rng, "client", overall),
            comment=_comment(rng, OF_CLIENTS, overall),
        )
        count += 1
        if client_reviews:
            overall = _rating(rng)
            review = await reviews.write(
                session,
                contract_id,
                client_id,
                rating=overall,
                ratings=_sub_ratings(rng, "developer", overall),
                comment=_comment(rng, OF_DEVELOPERS, overall),
            )
            count += 1
            if reply and rng.random() < 0.6:
                await reviews.reply(session, review.id, developer_id, rng.choice(REPLIES))
    return count
