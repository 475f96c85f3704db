"""Reputation: the figures follow contracts and published reviews through the event backbone,
recomputing from the facts so that a redelivered event changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mercato.core.contracts.models import (
    Contract,
    ContractActivity,
    ContractStatus,
    Milestone,
    MilestoneStatus,
)
from mercato.core.db import utcnow
from mercato.core.events import Event, emit
from mercato.core.reputation.models import PublishedRating, Reputation
from mercato.core.reputation.plugin import handle
from mercato.core.reputation.service import recompute
from tests.conftest import Databases, MakeSettings
from tests.integration.test_milestones import Deal, hire
from tests.marketplace_helpers import API, App, Apps, client, developer, open_market


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def app(apps: Apps) -> App:
    return await open_market(apps)


async def completed(app: App) -> Deal:
    """A contract whose two milestones were submitted, approved, and which the client completed."""
    deal = await hire(app)
    for index in range(2):
        assert (await deal.fund(index)).status_code == 200
        submitted = await deal.act(deal.dev, index, "submit", {"note": "Done, see the README."})
        assert submitted.status_code == 200, submitted.text
        assert (await deal.act(deal.owner, index, "approve")).status_code == 200
    done = await app.client.post(f"{API}/contracts/{deal.contract['id']}/complete", headers=deal.owner.auth)
    assert done.status_code == 200, done.text
    return deal


async def row(app: App, user_id: str | uuid.UUID, role: str) -> Reputation | None:
    async def read() -> Reputation | None:
        async with app.site.db.reading() as session:
            found = await session.get(Reputation, (uuid.UUID(str(user_id)), role))
            if found is not None:
                session.expunge(found)
            return found

    return await app.on_loop(read)


async def settled(app: App, user_id: str, role: str, check: Any, timeout: float = 15.0) -> Reputation:
    """The row once ``check(row)`` holds (the handler runs after the commit, on the backbone)."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await row(app, user_id, role)
        if found is not None and check(found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"reputation not as expected in time: {found and vars(found)}")
        await asyncio.sleep(0.05)


def published(review_id: uuid.UUID, deal: Deal, *, rating: int, to: str = "developer") -> Event:
    """The event the reviews plugin emits when a review becomes public."""
    subject = deal.dev.id if to == "developer" else deal.owner.id
    author = deal.owner.id if to == "developer" else deal.dev.id
    return Event(type="review.published", payload={
        "review_id": str(review_id), "contract_id": deal.contract["id"], "author_id": author,
        "subject_id": subject, "subject_role": to, "rating": rating,
        "ratings": {"quality": rating, "communication": 5, "timeliness": 4}, "comment": "Good work."})


async def emit_in_transaction(app: App, event: Event) -> None:
    async def write() -> None:
        async with app.site.db.transaction() as session:
            emit(session, event)

    await app.on_loop(write)


async def test_a_completed_contract_and_its_reviews_make_the_developers_reputation(app: App) -> None:
    deal = await completed(app)
    dev = await settled(app, deal.dev.id, "developer", lambda r: r.contracts_ended == 1)
    assert (dev.contracts_successful, dev.job_success) == (1, None)  # fewer than three ended: no score yet
    assert (dev.counterparts, dev.repeat_counterparts) == (1, 0)
    assert dev.rating_count == 0
    assert dev.rating_avg is None
    client_side = await settled(app, deal.owner.id, "client", lambda r: r.contracts_ended == 1)
    assert client_side.job_success is None

    first, second = uuid.uuid4(), uuid.uuid4()
    await emit_in_transaction(app, published(first, deal, rating=5))
    await emit_in_transaction(app, published(second, deal, rating=4))
    dev = await settled(app, deal.dev.id, "developer", lambda r: r.rating_count == 2)
    assert dev.rating_avg == 4.5
    assert dev.sub_ratings == {"communication": 5.0, "quality": 4.5, "timeliness": 4.0}

    await emit_in_transaction(app, Event(type="review.hidden", payload={
        "review_id": str(second), "contract_id": deal.contract["id"], "subject_id": deal.dev.id}))
    dev = await settled(app, deal.dev.id, "developer", lambda r: r.rating_count == 1)
    assert dev.rating_avg == 5.0
    await emit_in_transaction(app, Event(type="review.restored", payload={
        "review_id": str(second), "contract_id": deal.contract["id"], "subject_id": deal.dev.id}))
    assert (await settled(app, deal.dev.id, "developer", lambda r: r.rating_count == 2)).rating_avg == 4.5


async def test_a_redelivered_event_changes_nothing(app: App) -> None:
    deal = await completed(app)
    await settled(app, deal.dev.id, "developer", lambda r: r.contracts_ended == 1)
    event = published(uuid.uuid4(), deal, rating=3)

    async def deliver() -> None:
        async with app.site.db.transaction() as session:
            await handle(event, session)

    for _ in range(3):  # what JetStream does when an ack is lost
        await app.on_loop(deliver)
    dev = await row(app, deal.dev.id, "developer")
    assert dev is not None
    assert (dev.rating_count, dev.rating_avg) == (1, 3.0)

    async def ratings() -> int:
        async with app.site.db.reading() as session:
            return int(await session.scalar(sa.select(sa.func.count()).select_from(PublishedRating)) or 0)

    assert await app.on_loop(ratings) == 1


async def test_job_success_on_time_and_repeat_rates_on_crafted_contracts(app: App) -> None:
    """Four ended contracts of one developer with two clients: one lost in a dispute, one
    cancelled, two completed; three milestones with due dates, two delivered in time."""
    dev = await developer(app)
    alice, bob = await client(app, "Alice"), await client(app, "Bob")
    start = utcnow() - timedelta(days=30)

    async def craft() -> None:
        async with app.site.db.transaction() as session:
            def contract(owner: str, status: str) -> Contract:
                made = Contract(client_id=uuid.UUID(owner), developer_id=uuid.UUID(dev.id),
                                origin_type="proposal", origin_id=uuid.uuid4(), title="Work", currency="USD",
                                total=10_000, status=status, created_at=start)
                session.add(made)
                return made

            won, kept, lost = (contract(alice.id, ContractStatus.COMPLETED) for _ in range(3))
            contract(bob.id, ContractStatus.CANCELLED)
            contract(bob.id, ContractStatus.ACTIVE)  # not ended: counts only for repeat clients
            await session.flush()
            for position, (owner, due, delivered) in enumerate(
                [(won, 5, 4), (kept, 5, 9), (lost, 10, 1)]
            ):
                session.add(Milestone(contract_id=owner.id, position=position, title="Part", amount=10_000,
                                      due_days=due, status=MilestoneStatus.APPROVED, released=10_000,
                                      submitted_at=start + timedelta(days=delivered)))
            session.add(ContractActivity(contract_id=lost.id, kind="milestone.settled", amount=10_000,
                                         data={"released": 3_000, "refunded": 7_000}))
            await recompute(session, uuid.UUID(dev.id))
            await recompute(session, uuid.UUID(alice.id))

    await app.on_loop(craft)
    figures = await row(app, dev.id, "developer")
    assert figures is not None
    assert (figures.contracts_ended, figures.contracts_successful, figures.job_success) == (4, 2, 50)
    assert (figures.milestones_due, figures.milestones_on_time, figures.on_time_rate) == (3, 2, 67)
    assert (figures.counterparts, figures.repeat_counterparts) == (2, 2)
    assert figures.repeat_rate is None  # two clients are too few to say
    alice_side = await row(app, alice.id, "client")
    assert alice_side is not None
    # The dispute went the client's way: all three of Alice's contracts count as successes.
    assert (alice_side.contracts_ended, alice_side.contracts_successful) == (3, 3)
    assert alice_side.job_success == 100


async def test_reputation_shows_on_the_profile_and_ranks_in_search(app: App) -> None:
    deal = await completed(app)
    await emit_in_transaction(app, published(uuid.uuid4(), deal, rating=5))
    await settled(app, deal.dev.id, "developer", lambda r: r.rating_count == 1)

    public = (await app.client.get(f"{API}/users/{deal.dev.id}")).json()
    assert public["reputation"]["developer"]["rating_avg"] == 5.0
    assert public["reputation"]["developer"]["contracts_ended"] == 1
    page = await app.client.get(f"/users/{deal.dev.id}")
    assert "Track record" in page.text
    assert "Rated 5.0 out of 5 from 1 review" in page.text

    async def found(**params: Any) -> list[str]:
        response = await app.client.get(f"{API}/search", params={"type": "developers", **params})
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    import asyncio

    for _ in range(200):  # the search index follows reputation.changed on the backbone
        if deal.dev.id in await found(min_rating=4.5):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the rated developer never passed min_rating=4.5")
    other = await developer(app, "Unrated")
    for _ in range(200):  # and their sign-up
        if other.id in (ranked := await found(sort="rating")):
            break
        await asyncio.sleep(0.05)
    assert ranked.index(deal.dev.id) < ranked.index(other.id)
    assert other.id not in await found(min_rating=1)
    bad = await app.client.get(f"{API}/search", params={"type": "developers", "min_rating": 6})
    assert bad.status_code == 400

    listed = await app.client.get("/developers", params={"min_rating": "4.5", "sort": "rating"})
    assert listed.status_code == 200
    assert "Developer" in listed.text  # the rated developer's card
    assert "Rated 5.0 out of 5 from 1 review" in listed.text
    assert "Unrated" not in listed.text
    everyone = await app.client.get("/developers", params={"sort": "rating"})
    assert everyone.text.index("Rated 5.0") < everyone.text.index("Unrated")
    assert "Top rated" in everyone.text
    too_dear = await app.client.get("/developers", params={"max_rate": "lots"})
    assert too_dear.status_code == 400


async def test_reviews_handled_at_once_all_count(app: App) -> None:
    """Ten reviews of one person handled in ten concurrent transactions: none is lost to another's
    stale recomputation (PostgreSQL takes a lock per person; SQLite writes one at a time)."""
    import asyncio

    deal = await completed(app)
    events = [published(uuid.uuid4(), deal, rating=1 + i % 5) for i in range(10)]

    async def deliver(event: Event) -> None:
        async with app.site.db.transaction() as session:
            await handle(event, session)

    await app.on_loop(lambda: asyncio.gather(*(deliver(event) for event in events)))
    dev = await row(app, deal.dev.id, "developer")
    assert dev is not None
    assert dev.rating_count == 10
    assert dev.rating_avg == 3.0
