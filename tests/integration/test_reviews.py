"""Reviews after a contract: blind until both parties are in or the window closes (then the timer
publishes), only the parties, once each, in the window, with checked ratings; one reply by the
person reviewed; hidden reviews kept from the public; the events reputation consumes; the
notification to the person reviewed; the theme's parts; and the demo's reviews."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mercato import hookimpl
from mercato.core.contracts.models import Contract
from mercato.core.db import utcnow
from mercato.core.events import EventHandler
from mercato.core.site import Site
from mercato.core.timers.models import Timer
from mercato.plugins.reviews.models import Review
from tests.conftest import Databases, MakeSettings
from tests.integration.test_milestones import Deal, hire
from tests.marketplace_helpers import (
    API,
    App,
    Apps,
    EventLog,
    Person,
    assert_problem,
    client,
    developer,
    open_market,
    set_row,
)

OF_DEVELOPER = {"quality": 5, "communication": 4, "timeliness": 5}
OF_CLIENT = {"clarity": 4, "communication": 5, "payment_promptness": 5}


class ReviewLog(EventLog):
    """Records the reviews plugin's events as the stream carries them."""

    @hookimpl
    def register_event_handlers(self, site: Site) -> list[EventHandler]:
        return [EventHandler(id="test-review-log", events=("review.*",), handle=self._handle)]


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
def log() -> ReviewLog:
    return ReviewLog()


@pytest.fixture
async def app(apps: Apps, log: ReviewLog) -> App:
    return await open_market(apps, events=log)


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


async def completed(app: App) -> Deal:
    """A one-milestone contract, funded, approved and completed."""
    deal = await hire(app, [("Build it", 50_000)])
    await ok(await deal.fund(0))
    await ok(await deal.act(deal.owner, 0, "approve"))
    await ok(
        await app.client.post(f"{API}/contracts/{deal.contract['id']}/complete", headers=deal.owner.auth)
    )
    return deal


def reviews_url(deal: Deal) -> str:
    return f"{API}/contracts/{deal.contract['id']}/reviews"


async def review(deal: Deal, who: Person, **changes: Any) -> Any:
    body: dict[str, Any] = {
        "rating": 5 if who is deal.owner else 4,
        "ratings": OF_DEVELOPER if who is deal.owner else OF_CLIENT,
        "comment": f"Working with them was great, says the {'client' if who is deal.owner else 'developer'}.",
    }
    body.update(changes)
    return await deal.app.client.post(reviews_url(deal), headers=who.auth, json=body)


async def seen_by(deal: Deal, who: Person) -> dict[str, Any]:
    return await ok(await deal.app.client.get(reviews_url(deal), headers=who.auth))


async def public(app: App, person: Person) -> list[dict[str, Any]]:
    page = await ok(await app.client.get(f"{API}/users/{person.id}/reviews"))
    return list(page["items"])


# ---------------------------------------------------------------------------
# Blind reviews
# ---------------------------------------------------------------------------


async def test_each_party_sees_only_their_own_until_both_are_in_then_both_publish(
    app: App, log: ReviewLog
) -> None:
    deal = await completed(app)
    before = await seen_by(deal, deal.owner)
    assert before["state"] == "open"
    assert before["can_review"]
    assert before["ratings_asked"] == ["quality", "communication", "timeliness"]
    assert (await seen_by(deal, deal.dev))["ratings_asked"] == [
        "clarity",
        "communication",
        "payment_promptness",
    ]

    mine = await ok(await review(deal, deal.owner), 201)
    assert mine["published"] is False
    assert mine["subject_id"] == deal.dev.id
    assert mine["subject_role"] == "developer"
    client_view = await seen_by(deal, deal.owner)
    assert client_view["state"] == "waiting"
    assert client_view["mine"]["id"] == mine["id"]
    assert client_view["theirs"] is None
    dev_view = await seen_by(deal, deal.dev)
    assert dev_view["state"] == "open"
    assert dev_view["mine"] is None
    assert dev_view["theirs"] is None
    assert mine["id"] not in (await app.client.get(reviews_url(deal), headers=deal.dev.auth)).text
    assert await public(app, deal.dev) == []
    # a timer waits for the window's end
    timer = await timer_of(app, deal)
    assert timer is not None
    assert abs((timer - (utcnow() + timedelta(days=14))).total_seconds()) < 120

    theirs = await ok(await review(deal, deal.dev), 201)
    assert theirs["published"] is True
    client_view, dev_view = await seen_by(deal, deal.owner), await seen_by(deal, deal.dev)
    assert client_view["state"] == dev_view["state"] == "published"
    assert client_view["theirs"]["id"] == theirs["id"]
    assert dev_view["theirs"]["id"] == mine["id"]
    assert client_view["mine"]["published_at"] == dev_view["mine"]["published_at"]  # together
    assert [r["id"] for r in await public(app, deal.dev)] == [mine["id"]]
    assert [r["id"] for r in await public(app, deal.owner)] == [theirs["id"]]
    assert (await public(app, deal.dev))[0]["ratings"] == OF_DEVELOPER
    assert await timer_of(app, deal) is None

    await log.wait_for(lambda: len(log.of("review.published")) == 2)
    published = {e.payload["review_id"]: e for e in log.of("review.published")}
    event = published[mine["id"]]
    assert event.actor_id == uuid.UUID(deal.owner.id)
    assert event.payload == {
        "review_id": mine["id"],
        "contract_id": deal.contract["id"],
        "author_id": deal.owner.id,
        "subject_id": deal.dev.id,
        "subject_role": "developer",
        "rating": 5,
        "ratings": OF_DEVELOPER,
        "comment": "Working with them was great, says the client.",
    }
    assert published[theirs["id"]].payload["subject_role"] == "client"
    assert published[theirs["id"]].payload["ratings"] == OF_CLIENT


async def timer_of(app: App, deal: Deal) -> Any:
    async def read() -> Any:
        async with app.site.db.reading() as session:
            return await session.scalar(
                sa.select(Timer.due_at).where(
                    Timer.kind == "review.publish_due", Timer.ref == deal.contract["id"]
                )
            )

    return await app.on_loop(read)


async def test_when_the_window_closes_the_timer_publishes_a_lone_review(app: App, log: ReviewLog) -> None:
    deal = await completed(app)
    mine = await ok(await review(deal, deal.dev, rating=3, comment="Slow answers."), 201)
    await deal.run_timers(days=13)
    assert (await seen_by(deal, deal.owner))["theirs"] is None
    await deal.run_timers(days=14.01)
    client_view = await seen_by(deal, deal.owner)
    assert client_view["theirs"]["id"] == mine["id"]
    assert (await seen_by(deal, deal.dev))["state"] == "published"
    assert [r["id"] for r in await public(app, deal.owner)] == [mine["id"]]
    await log.wait_for(lambda: len(log.of("review.published")) == 1)
    assert log.of("review.published")[0].payload["rating"] == 3
    # once the window has passed, the client may not write theirs any more
    await set_row(app, Contract, deal.contract["id"], ended_at=utcnow() - timedelta(days=14, minutes=1))
    problem = assert_problem(await review(deal, deal.owner), 409)
    assert "closed" in problem["detail"]
    assert (await seen_by(deal, deal.owner))["state"] == "published"


async def test_a_review_after_the_window_is_refused(app: App) -> None:
    deal = await completed(app)
    await set_row(app, Contract, deal.contract["id"], ended_at=utcnow() - timedelta(days=15))
    problem = assert_problem(await review(deal, deal.owner), 409)
    assert "window" in problem["detail"]
    assert "14 days" in problem["detail"]
    assert (await seen_by(deal, deal.owner))["state"] == "closed"


# ---------------------------------------------------------------------------
# Who, when, what
# ---------------------------------------------------------------------------


async def test_only_the_parties_review_and_only_once(app: App) -> None:
    deal = await completed(app)
    stranger = await developer(app, "Stranger")
    assert_problem(await review(deal, stranger), 404)
    assert_problem(await app.client.get(reviews_url(deal), headers=stranger.auth), 404)
    assert_problem(await app.client.get(reviews_url(deal)), 401)
    assert_problem(await app.client.post(reviews_url(deal), json={"rating": 5}), 401)
    assert_problem(
        await app.client.post(
            f"{API}/contracts/{uuid.uuid4()}/reviews",
            headers=deal.owner.auth,
            json={"rating": 5, "ratings": OF_DEVELOPER},
        ),
        404,
    )
    await ok(await review(deal, deal.owner), 201)
    problem = assert_problem(await review(deal, deal.owner, rating=1), 409)
    assert "already" in problem["detail"]
    assert len(await all_reviews(app)) == 1


async def all_reviews(app: App) -> list[Any]:
    """Every review row's author and publication time."""

    async def read() -> list[Any]:
        async with app.site.db.reading() as session:
            return list(await session.execute(sa.select(Review.author_id, Review.published_at)))

    return await app.on_loop(read)


async def test_only_an_ended_contract_with_a_payment_can_be_reviewed(app: App) -> None:
    deal = await hire(app, [("Design", 40_000), ("Build", 60_000)])
    assert "not yet" not in (await seen_by(deal, deal.owner))["state"]
    assert (await seen_by(deal, deal.owner))["state"] == "not_eligible"
    assert_problem(await review(deal, deal.owner), 409)  # not started
    await ok(await deal.fund(0))
    await ok(await deal.act(deal.owner, 0, "approve"))
    assert_problem(await review(deal, deal.owner), 409)  # still active
    # cancelled after a payment: reviewable
    await ok(await app.client.post(f"{API}/contracts/{deal.contract['id']}/cancel", headers=deal.dev.auth))
    await ok(await review(deal, deal.owner), 201)
    # cancelled with nothing paid: not
    unpaid = await hire(app)
    await ok(
        await app.client.post(f"{API}/contracts/{unpaid.contract['id']}/cancel", headers=unpaid.owner.auth)
    )
    problem = assert_problem(await review(unpaid, unpaid.owner), 409)
    assert "completed" in problem["detail"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"ratings": {"quality": 5, "communication": 4}}, "ratings.timeliness"),
        ({"ratings": {**OF_DEVELOPER, "quality": 9}}, "ratings.quality"),
        ({"ratings": {**OF_DEVELOPER, "clarity": 3}}, "ratings.clarity"),  # the client's, not the developer's
        ({"rating": "five"}, "rating"),
    ],
)
async def test_ratings_out_of_range_are_a_400_naming_the_field(
    app: App, changes: dict[str, Any], field: str
) -> None:
    deal = await completed(app)
    problem = assert_problem(await review(deal, deal.owner, **changes), 400)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert (await seen_by(deal, deal.owner))["state"] == "open"


async def test_the_person_reviewed_replies_once_to_a_published_review(app: App) -> None:
    deal = await completed(app)
    mine = await ok(await review(deal, deal.owner), 201)
    url = f"{API}/reviews/{mine['id']}/reply"
    assert_problem(await app.client.post(url, headers=deal.dev.auth, json={"body": "Thanks!"}), 404)  # blind
    assert_problem(await app.client.post(url, headers=deal.owner.auth, json={"body": "Me"}), 403)
    await ok(await review(deal, deal.dev), 201)
    assert_problem(await app.client.post(url, headers=deal.owner.auth, json={"body": "Me again"}), 403)
    stranger = await client(app, "Stranger")
    assert_problem(await app.client.post(url, headers=stranger.auth, json={"body": "Hi"}), 403)
    assert_problem(await app.client.post(url, json={"body": "Hi"}), 401)
    assert_problem(await app.client.post(url, headers=deal.dev.auth, json={"body": ""}), 400)
    replied = await ok(
        await app.client.post(url, headers=deal.dev.auth, json={"body": "Thank you, a pleasure."})
    )
    assert replied["reply"]["body"] == "Thank you, a pleasure."
    problem = assert_problem(await app.client.post(url, headers=deal.dev.auth, json={"body": "Again"}), 409)
    assert "already" in problem["detail"]
    assert (await public(app, deal.dev))[0]["reply"]["body"] == "Thank you, a pleasure."
    assert_problem(
        await app.client.post(
            f"{API}/reviews/{uuid.uuid4()}/reply", headers=deal.dev.auth, json={"body": "x"}
        ),
        404,
    )


async def test_hidden_reviews_leave_the_public_but_their_people_still_see_them(
    app: App, log: ReviewLog
) -> None:
    deal = await completed(app)
    mine = await ok(await review(deal, deal.owner, comment="Rude and late."), 201)
    await ok(await review(deal, deal.dev), 201)
    subject = app.site.plugins.report_subjects(app.site)["review"]
    assert subject.label == "a review"
    review_id = uuid.UUID(mine["id"])

    async def describe(viewer: str | None) -> Any:
        async with app.site.db.reading() as session:
            return await subject.describe(session, review_id, uuid.UUID(viewer) if viewer else None)

    async def hide(hidden: bool) -> None:
        async with app.site.db.transaction() as session:
            await subject.hide(session, review_id, hidden)

    item = await app.on_loop(lambda: describe(None))
    assert item.owner_id == uuid.UUID(deal.owner.id)
    assert item.excerpt == "Rude and late."
    assert not item.hidden
    assert item.url == f"/users/{deal.dev.id}/reviews#review-{mine['id']}"
    await app.on_loop(lambda: hide(True))
    assert await public(app, deal.dev) == []
    assert (await seen_by(deal, deal.dev))["theirs"]["hidden"] is True
    assert (await seen_by(deal, deal.owner))["mine"]["hidden"] is True
    assert (await app.on_loop(lambda: describe(None))).hidden is True
    stranger = await client(app, "Stranger")
    assert await app.on_loop(lambda: describe(stranger.id)) is None
    assert (await app.on_loop(lambda: describe(deal.dev.id))) is not None
    page = await app.client.get(f"/users/{deal.dev.id}/reviews", headers={"Accept": "text/html"})
    assert "Rude and late." not in page.text
    await app.on_loop(lambda: hide(True))  # again: nothing changes, no second event
    await app.on_loop(lambda: hide(False))
    assert [r["id"] for r in await public(app, deal.dev)] == [mine["id"]]
    await log.wait_for(lambda: len(log.of("review.restored")) == 1)
    expected = {"review_id": mine["id"], "contract_id": deal.contract["id"], "subject_id": deal.dev.id}
    assert [e.payload for e in log.of("review.hidden")] == [expected]
    assert [e.payload for e in log.of("review.restored")] == [expected]


async def test_two_reviews_arriving_at_once_publish_together_once(apps: Apps, log: ReviewLog) -> None:
    from tests.marketplace_helpers import market_settings, send_concurrently

    settings = await market_settings(apps)
    first = await open_market(apps, settings=settings, events=log)
    second = await open_market(apps, settings=settings)
    deal = await completed(first)
    body = {"rating": 4, "comment": "Fine."}
    answers = await send_concurrently(
        (first, "POST", reviews_url(deal), deal.owner.auth, {**body, "ratings": OF_DEVELOPER}),
        (second, "POST", reviews_url(deal), deal.dev.auth, {**body, "ratings": OF_CLIENT}),
    )
    assert [status for status, _ in answers] == [201, 201]
    await log.wait_for(lambda: len(log.of("review.published")) == 2)
    assert all(r.published_at is not None for r in await all_reviews(first))


# ---------------------------------------------------------------------------
# Notifications and pages
# ---------------------------------------------------------------------------


async def test_the_person_reviewed_is_notified_once_it_is_published(app: App) -> None:
    deal = await completed(app)
    await ok(await review(deal, deal.owner), 201)
    await ok(await review(deal, deal.dev), 201)

    from tests.integration.test_accounts_security import eventually

    await eventually(lambda: _has(app, deal.dev, "Client reviewed you: 5 stars"), within=10)
    await eventually(lambda: _has(app, deal.owner, "Developer reviewed you: 4 stars"), within=10)
    page = await ok(await app.client.get(f"{API}/notifications", headers=deal.dev.auth))
    found = [n for n in page["items"] if "reviewed you" in n["title"]]
    assert len(found) == 1
    assert found[0]["url"] == f"/contracts/{deal.contract['id']}#reviews"
    assert found[0]["body"] == "Working with them was great, says the client."


async def _has(app: App, person: Person, title: str) -> bool:
    page = await ok(await app.client.get(f"{API}/notifications", headers=person.auth))
    return any(n["title"] == title for n in page["items"])


async def test_the_public_reviews_page_paginates_and_has_an_empty_state(app: App) -> None:
    dev = None
    ids = []
    for _ in range(3):
        deal = await completed(app) if dev is None else await completed_with(app, dev)
        dev = deal.dev
        ids.append((await ok(await review(deal, deal.owner), 201))["id"])
        await ok(await review(deal, deal.dev), 201)
    assert dev is not None
    first = await ok(await app.client.get(f"{API}/users/{dev.id}/reviews?limit=2"))
    assert [r["id"] for r in first["items"]] == ids[::-1][:2]
    rest = await ok(
        await app.client.get(f"{API}/users/{dev.id}/reviews?limit=2&cursor={first['next_cursor']}")
    )
    assert [r["id"] for r in rest["items"]] == ids[:1]
    assert rest["next_cursor"] is None
    assert_problem(await app.client.get(f"{API}/users/{uuid.uuid4()}/reviews"), 404)
    html = await app.client.get(f"/users/{dev.id}/reviews", headers={"Accept": "text/html"})
    assert html.status_code == 200
    assert html.text.count('class="review"') == 3
    assert f"/report?type=review&amp;id={ids[0]}" in html.text
    profile = await app.client.get(f"/users/{dev.id}", headers={"Accept": "text/html"})
    assert "Reviews" in profile.text
    assert profile.text.count('class="review"') == 3
    nobody = await developer(app, "Nobody")
    empty = await app.client.get(f"/users/{nobody.id}/reviews", headers={"Accept": "text/html"})
    assert "has no reviews yet" in empty.text
    assert (
        "No reviews yet."
        in (await app.client.get(f"/users/{nobody.id}", headers={"Accept": "text/html"})).text
    )


async def completed_with(app: App, dev: Person) -> Deal:
    """Another completed contract of ``dev``'s, with a new client."""
    from tests.marketplace_helpers import bid, post_project

    owner = await client(app)
    project = await post_project(app, owner)
    proposal = await bid(
        app, dev, project, amount=50_000, milestones=[{"title": "Build it", "amount": 50_000}]
    )
    accepted = await ok(await app.client.post(f"{API}/proposals/{proposal['id']}/accept", headers=owner.auth))
    contract = await ok(
        await app.client.get(f"{API}/contracts/{accepted['contract_id']}", headers=owner.auth)
    )
    deal = Deal(app, owner, dev, contract)
    await ok(await deal.fund(0))
    await ok(await deal.act(owner, 0, "approve"))
    await ok(await app.client.post(f"{API}/contracts/{deal.contract['id']}/complete", headers=owner.auth))
    return deal


# ---------------------------------------------------------------------------
# Demo data
# ---------------------------------------------------------------------------


async def test_the_demo_gives_developers_a_track_record_of_published_reviews(
    sites: Any, migrated_settings: Any
) -> None:
    from mercato.core.accounts.models import User
    from mercato.core.demo import DEMO_CLIENT, DEMO_DEVELOPER, prepare_demo

    site = await sites.start(migrated_settings, background=False)
    await prepare_demo(site)  # the core's demo, then every plugin's seed_demo_data

    async with site.db.reading() as session:
        rows = (
            await session.execute(
                sa.select(User.email, sa.func.count(Review.id))
                .join(Review, Review.subject_id == User.id)
                .where(Review.published_at.is_not(None))
                .group_by(User.email)
            )
        ).all()
        blind = await session.scalar(sa.select(sa.func.count()).where(Review.published_at.is_(None)))
        ratings = set(await session.scalars(sa.select(Review.rating)))
        replies = await session.scalar(sa.select(sa.func.count()).where(Review.replied_at.is_not(None)))
    published = dict(rows)
    assert published[DEMO_DEVELOPER] >= 3
    assert sum(1 for count in published.values() if count >= 3) >= 5
    assert published[DEMO_CLIENT] >= 1
    assert blind == 1, "one of the demo client's contracts still waits for the client's review"
    assert len(ratings) >= 3
    assert replies
