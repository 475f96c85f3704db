"""The proposals API over HTTP: bidding rules, editing, the proposal state machine, who may do
what, the client's comparison list, hiring (contract, declines, events) and races between
acceptances on two app instances of one database.

Each test runs a real app on a fresh migrated database (SQLite, or PostgreSQL with
``MERCATO_TEST_DATABASE_URL``). Sign-ups cost ~25 ms of argon2 each, so tests reuse people.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mercato.core.projects.models import PROPOSAL_TRANSITIONS, ProposalStatus
from tests.conftest import Databases, MakeSettings
from tests.marketplace_helpers import (
    API,
    App,
    Apps,
    EventLog,
    Person,
    assert_problem,
    bid,
    client,
    developer,
    market_settings,
    open_market,
    post_project,
    proposal_body,
    send_concurrently,
    verify_email,
)


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


def auth(who: Person | None) -> dict[str, str]:
    return who.auth if who else {}


async def submit(app: App, who: Person | None, project: dict[str, Any], **changes: Any) -> Any:
    return await app.client.post(
        f"{API}/projects/{project['id']}/proposals", headers=auth(who), json=proposal_body(project, **changes)
    )


async def act(app: App, who: Person | None, proposal_id: str, action: str, body: Any = None) -> Any:
    return await app.client.post(f"{API}/proposals/{proposal_id}/{action}", headers=auth(who), json=body)


async def read(app: App, who: Person | None, proposal_id: str) -> Any:
    return await app.client.get(f"{API}/proposals/{proposal_id}", headers=auth(who))


async def project_of(app: App, owner: Person, project: dict[str, Any]) -> dict[str, Any]:
    response = await app.client.get(f"{API}/projects/{project['id']}", headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def contracts_of(app: App, who: Person) -> list[dict[str, Any]]:
    response = await app.client.get(f"{API}/contracts", headers=who.auth)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# Bidding
# ---------------------------------------------------------------------------


async def test_bidding_rules(app: App) -> None:
    owner = await client(app, "Owner")
    dev = await developer(app, "Dev")
    other_client = await client(app, "Other client")
    both = await _both_roles(app)
    project = await post_project(app, owner, screening_questions=["Which stack?", "When can you start?"])
    plain = await post_project(app, owner)  # asks no questions
    hourly = await post_project(
        app, owner, budget={"type": "hourly", "min": 30_00, "max": 90_00, "currency": "EUR"}
    )

    # who may bid
    mine = await post_project(app, both)
    assert_problem(await submit(app, both, mine), 403)
    assert_problem(await submit(app, other_client, project), 403)
    assert_problem(await submit(app, None, project), 401)
    assert_problem(
        await submit(
            app, dev, {"id": str(uuid.uuid4()), "budget": {"currency": "USD"}, "screening_questions": []}
        ),
        404,
    )

    # the terms
    assert_problem(await submit(app, dev, project, currency="EUR"), 400, field="currency")
    assert_problem(
        await submit(
            app,
            dev,
            project,
            amount=300_00,
            milestones=[{"title": "Design", "amount": 100_00}, {"title": "Build", "amount": 100_00}],
        ),
        400,
        field="milestones",
    )
    assert_problem(
        await submit(app, dev, hourly, amount=50_00, milestones=[{"title": "Week", "amount": 50_00}]),
        400,
        field="milestones",
    )
    assert_problem(await submit(app, dev, project, answers=["Python"]), 400, field="answers")
    assert_problem(await submit(app, dev, project, answers=["Python", "Monday", "Extra"]), 400)
    assert_problem(await submit(app, dev, project, answers=["Python", "   "]), 400, field="answers")
    assert_problem(await submit(app, dev, plain, answers=["Unasked"]), 400, field="answers")
    assert_problem(await submit(app, dev, project, amount=500_00 * 10 + 1), 400, field="amount")
    assert_problem(await submit(app, dev, project, amount=0), 400, field="amount")
    assert_problem(await submit(app, dev, project, duration_days=0), 400, field="duration_days")
    assert_problem(await submit(app, dev, project, cover_letter="Hire me"), 400, field="cover_letter")
    assert (await project_of(app, owner, project))["proposal_count"] == 0, "nothing was kept"

    # a good bid: 201, with the plan and answers as sent
    response = await submit(
        app,
        dev,
        project,
        amount=500_00 * 10,
        answers=["  Python ", "Monday"],
        milestones=[{"title": "Design   and plan", "amount": 1000_00}, {"title": "Build", "amount": 4000_00}],
    )
    assert response.status_code == 201, response.text
    proposal = response.json()
    assert proposal["status"] == "submitted"
    assert proposal["amount"] == 5000_00
    assert proposal["currency"] == "USD"
    assert proposal["hourly"] is False
    assert proposal["answers"] == ["Python", "Monday"]
    assert proposal["milestones"] == [
        {"title": "Design and plan", "amount": 1000_00},
        {"title": "Build", "amount": 4000_00},
    ]
    assert proposal["project_id"] == project["id"]
    assert proposal["project_title"] == project["title"]
    assert proposal["developer"]["id"] == dev.id
    assert proposal["developer"]["display_name"] == "Dev"
    assert proposal["contract_id"] is None
    assert proposal["decline_message"] == ""
    assert (await project_of(app, owner, project))["proposal_count"] == 1
    seen = (await app.client.get(f"{API}/projects/{project['id']}", headers=dev.auth)).json()
    assert seen["my_proposal_id"] == proposal["id"]

    # one live proposal per developer and project
    assert_problem(await submit(app, dev, project), 409)
    assert (await project_of(app, owner, project))["proposal_count"] == 1

    hourly_bid = await bid(app, dev, hourly, amount=45_00, currency="EUR")
    assert hourly_bid["hourly"] is True
    assert hourly_bid["milestones"] == []


async def test_bidding_needs_an_open_project(app: App) -> None:
    owner = await client(app)
    dev, hired_dev = await developer(app), await developer(app)
    draft = await post_project(app, owner, publish=False)
    assert_problem(await submit(app, dev, draft), 404)  # a draft is invisible to them
    closed = await post_project(app, owner)
    await app.client.post(f"{API}/projects/{closed['id']}/close", headers=owner.auth)
    assert_problem(await submit(app, dev, closed), 409)
    cancelled = await post_project(app, owner)
    await app.client.post(f"{API}/projects/{cancelled['id']}/cancel", headers=owner.auth)
    assert_problem(await submit(app, dev, cancelled), 409)
    hired = await post_project(app, owner)
    proposal = await bid(app, hired_dev, hired)
    assert (await act(app, owner, proposal["id"], "accept")).status_code == 200
    assert_problem(await submit(app, dev, hired), 409)
    invite_only = await post_project(app, owner, visibility="invite_only")
    assert_problem(await submit(app, dev, invite_only), 404)
    await app.client.post(
        f"{API}/projects/{invite_only['id']}/invites", headers=owner.auth, json={"developer_id": dev.id}
    )
    assert (await submit(app, dev, invite_only)).status_code == 201


async def test_unverified_developers_cannot_bid_when_required(apps: Apps) -> None:
    app = await open_market(apps, require_verified_email=True)
    owner = await client(app)
    await verify_email(app, owner)
    dev = await developer(app)
    project = await post_project(app, owner)
    assert_problem(await submit(app, dev, project), 403)
    assert (await project_of(app, owner, project))["proposal_count"] == 0
    await verify_email(app, dev)
    assert (await submit(app, dev, project)).status_code == 201


async def test_a_withdrawn_proposal_is_revived_by_bidding_again(app: App) -> None:
    owner = await client(app)
    dev, rival = await developer(app), await developer(app)
    project = await post_project(app, owner, screening_questions=["Why you?"])
    first = await bid(app, dev, project, amount=200_00, milestones=[{"title": "All", "amount": 200_00}])
    await bid(app, rival, project)
    assert (await project_of(app, owner, project))["proposal_count"] == 2

    withdrawn = await act(app, dev, first["id"], "withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert (await project_of(app, owner, project))["proposal_count"] == 1
    assert_problem(await act(app, dev, first["id"], "withdraw"), 409)
    assert (await project_of(app, owner, project))["proposal_count"] == 1, "not counted down twice"

    again = await submit(
        app,
        dev,
        project,
        amount=250_00,
        duration_days=30,
        answers=["Experience"],
        cover_letter="Second thoughts: here is a better offer for you.",
    )
    assert again.status_code == 201, again.text
    revived = again.json()
    assert revived["id"] == first["id"], "the same proposal, revived"
    assert revived["status"] == "submitted"
    assert (revived["amount"], revived["duration_days"], revived["milestones"], revived["answers"]) == (
        250_00,
        30,
        [],
        ["Experience"],
    )
    assert revived["cover_letter"] == "Second thoughts: here is a better offer for you."
    assert revived["submitted_at"] > first["submitted_at"]
    assert (await project_of(app, owner, project))["proposal_count"] == 2
    listed = (await app.client.get(f"{API}/projects/{project['id']}/proposals", headers=owner.auth)).json()
    assert len(listed) == 2


async def test_proposal_count_follows_live_proposals(app: App) -> None:
    owner = await client(app)
    devs = [await developer(app, f"Dev {i}") for i in range(4)]
    project = await post_project(app, owner)

    async def count() -> int:
        return (await project_of(app, owner, project))["proposal_count"]  # type: ignore[no-any-return]

    proposals = [await bid(app, d, project) for d in devs]
    assert await count() == 4
    assert (await act(app, owner, proposals[0]["id"], "shortlist")).status_code == 200
    assert await count() == 4, "shortlisted proposals are live"
    assert (await act(app, owner, proposals[1]["id"], "decline", {"message": "No"})).status_code == 200
    assert await count() == 3
    assert (await act(app, devs[0], proposals[0]["id"], "withdraw")).status_code == 200
    assert await count() == 2
    assert_problem(await act(app, owner, proposals[1]["id"], "decline"), 409)
    assert await count() == 2
    assert (await act(app, owner, proposals[2]["id"], "accept")).status_code == 200
    # the hired proposal stays counted (the service keeps 1); the other live one was declined
    assert await count() == 1


# ---------------------------------------------------------------------------
# Editing
# ---------------------------------------------------------------------------


async def test_editing_a_proposal(app: App) -> None:
    owner, other_client = await client(app), await client(app)
    dev, other_dev = await developer(app), await developer(app)
    project = await post_project(app, owner, screening_questions=["Why you?"])
    proposal = await bid(
        app,
        dev,
        project,
        amount=300_00,
        answers=["Because"],
        milestones=[{"title": "One", "amount": 100_00}, {"title": "Two", "amount": 200_00}],
    )
    url = f"{API}/proposals/{proposal['id']}"

    async def edit(who: Person | None, **changes: Any) -> Any:
        return await app.client.patch(url, headers=auth(who), json=changes)

    response = await edit(dev, cover_letter="An even better cover letter for this work.", duration_days=9)
    assert response.status_code == 200, response.text
    assert response.json()["duration_days"] == 9
    assert response.json()["milestones"] == proposal["milestones"], "the plan stays when the price does"
    response = await edit(
        dev, amount=400_00, milestones=[{"title": "A", "amount": 150_00}, {"title": "B", "amount": 250_00}]
    )
    assert response.status_code == 200, response.text
    assert response.json()["milestones"] == [
        {"title": "A", "amount": 150_00},
        {"title": "B", "amount": 250_00},
    ]
    response = await edit(dev, amount=350_00)
    assert response.status_code == 200
    assert (response.json()["amount"], response.json()["milestones"]) == (350_00, []), (
        "new price: one milestone"
    )
    assert_problem(await edit(dev, milestones=[{"title": "A", "amount": 1}]), 400, field="milestones")
    assert_problem(await edit(dev, answers=[]), 400, field="answers")
    assert_problem(await edit(dev, amount=500_00 * 10 + 1), 400, field="amount")
    assert_problem(await edit(dev, currency="EUR"), 400)  # the currency is the project's

    # only its developer
    assert_problem(await edit(owner, amount=1_00), 403)
    assert_problem(await edit(other_dev, amount=1_00), 404)
    assert_problem(await edit(other_client, amount=1_00), 404)
    assert_problem(await edit(None, amount=1_00), 401)
    assert_problem(
        await app.client.patch(f"{API}/proposals/{uuid.uuid4()}", headers=dev.auth, json={"amount": 1_00}),
        404,
    )
    assert (await read(app, dev, proposal["id"])).json()["amount"] == 350_00

    # only while submitted
    assert (await act(app, owner, proposal["id"], "shortlist")).status_code == 200
    assert_problem(await edit(dev, amount=360_00), 409)
    withdrawn = await bid(app, other_dev, project, answers=["Me"])
    await act(app, other_dev, withdrawn["id"], "withdraw")
    assert_problem(
        await app.client.patch(
            f"{API}/proposals/{withdrawn['id']}", headers=other_dev.auth, json={"amount": 1_00}
        ),
        409,
    )
    assert (await read(app, dev, proposal["id"])).json()["amount"] == 350_00


# ---------------------------------------------------------------------------
# The proposal state machine
# ---------------------------------------------------------------------------


ACTIONS: dict[str, tuple[str, ProposalStatus]] = {
    "shortlist": ("client", ProposalStatus.SHORTLISTED),
    "decline": ("client", ProposalStatus.DECLINED),
    "accept": ("client", ProposalStatus.ACCEPTED),
    "withdraw": ("developer", ProposalStatus.WITHDRAWN),
    "bid again": ("developer", ProposalStatus.SUBMITTED),
}
"""Each way to change a proposal's status: who does it and the status it asks for."""

REACH = {
    ProposalStatus.SUBMITTED: [],
    ProposalStatus.SHORTLISTED: ["shortlist"],
    ProposalStatus.DECLINED: ["decline"],
    ProposalStatus.WITHDRAWN: ["withdraw"],
    ProposalStatus.ACCEPTED: ["accept"],
}
"""How a fresh proposal is brought to each status."""


@pytest.mark.parametrize("state", [s.value for s in ProposalStatus])
async def test_every_proposal_transition_through_the_api(app: App, state: str) -> None:
    """From each status, each action: 200/201 exactly where PROPOSAL_TRANSITIONS allows it."""
    owner = await client(app)
    dev = await developer(app)
    assert set(REACH) == set(PROPOSAL_TRANSITIONS)

    async def do(action: str, project: dict[str, Any], proposal_id: str) -> Any:
        who, _ = ACTIONS[action]
        if action == "bid again":
            return await submit(app, dev, project, amount=123_00)
        person = owner if who == "client" else dev
        return await act(
            app, person, proposal_id, action, {"message": "Thanks"} if action == "decline" else None
        )

    for action, (_, target) in ACTIONS.items():
        project = await post_project(app, owner)
        proposal = await bid(app, dev, project)
        for step in REACH[ProposalStatus(state)]:
            response = await do(step, project, proposal["id"])
            assert response.status_code == 200, response.text
        assert (await read(app, dev, proposal["id"])).json()["status"] == state
        response = await do(action, project, proposal["id"])
        after = (await read(app, dev, proposal["id"])).json()
        if target in PROPOSAL_TRANSITIONS[state]:
            assert response.status_code in (200, 201), f"{state} --{action}--> {response.text}"
            assert after["status"] == target
        else:
            assert_problem(response, 409)
            assert after["status"] == state, f"{state} --{action}--> changed it"


async def test_decline_message_and_the_client_side_of_the_machine(app: App) -> None:
    owner = await client(app)
    dev, dev2 = await developer(app), await developer(app)
    project = await post_project(app, owner)
    proposal = await bid(app, dev, project)
    declined = await act(app, owner, proposal["id"], "decline", {"message": "  Over budget, sorry. "})
    assert declined.status_code == 200, declined.text
    assert declined.json()["decline_message"] == "Over budget, sorry."
    assert (await read(app, dev, proposal["id"])).json()["decline_message"] == "Over budget, sorry."
    plain = await bid(app, dev2, project)
    response = await act(app, owner, plain["id"], "decline")  # no body at all
    assert response.status_code == 200, response.text
    assert response.json()["decline_message"] == ""
    assert_problem(await act(app, dev, proposal["id"], "decline", {"message": "x" * 2001}), 400)
    # bidding again after a decline is refused: declined is final
    assert_problem(await submit(app, dev, project), 409)


# ---------------------------------------------------------------------------
# Who may do what
# ---------------------------------------------------------------------------


async def test_permission_matrix(app: App) -> None:
    owner, other_client = await client(app, "Owner"), await client(app, "Other client")
    dev, rival, outsider = (
        await developer(app, "Bidder"),
        await developer(app, "Rival"),
        await developer(app, "Outsider"),
    )
    project = await post_project(app, owner)
    proposal = await bid(app, dev, project)
    rivals = await bid(app, rival, project)
    pid = proposal["id"]
    people: dict[str, Person | None] = {
        "owner": owner,
        "developer": dev,
        "rival": rival,
        "outsider": outsider,
        "other client": other_client,
        "anonymous": None,
    }
    strangers = ["rival", "outsider", "other client"]

    def expect(owner_: int, developer_: int) -> dict[str, int]:
        return {"owner": owner_, "developer": developer_, "anonymous": 401, **dict.fromkeys(strangers, 404)}

    async def statuses(call: Any, only: list[str]) -> dict[str, int]:
        got = {}
        for name in only:
            response = await call(people[name])
            got[name] = response.status_code
            if name in strangers or name == "anonymous":
                assert response.status_code != 200, f"{name} got {response.text}"
                assert pid not in response.text
        return got

    everyone_but_allowed = ["anonymous", *strangers]
    # reading
    assert await statuses(lambda who: read(app, who, pid), list(people)) == expect(200, 200)
    # the client's decisions: the developer may see the proposal but not decide (403)
    for action in ("shortlist", "decline", "accept"):
        got = await statuses(
            lambda who, a=action: act(app, who, pid, a), ["developer", *everyone_but_allowed]
        )
        assert got == {k: v for k, v in expect(0, 403).items() if k != "owner"}, action
    # the developer's moves: the owner may see it but not move it (403)
    got = await statuses(lambda who: act(app, who, pid, "withdraw"), ["owner", *everyone_but_allowed])
    assert got == {k: v for k, v in expect(403, 0).items() if k != "developer"}
    got = await statuses(
        lambda who: app.client.patch(f"{API}/proposals/{pid}", headers=auth(who), json={"duration_days": 3}),
        ["owner", *everyone_but_allowed],
    )
    assert got == {k: v for k, v in expect(403, 0).items() if k != "developer"}
    unchanged = (await read(app, dev, pid)).json()
    assert (unchanged["status"], unchanged["duration_days"]) == ("submitted", proposal["duration_days"])

    # the project's list: everything for the owner, one's own for a developer, nothing for others
    listing = f"{API}/projects/{project['id']}/proposals"

    async def listed(who: Person | None) -> Any:
        return await app.client.get(listing, headers=auth(who))

    assert sorted(p["id"] for p in (await listed(owner)).json()) == sorted([pid, rivals["id"]])
    assert [p["id"] for p in (await listed(dev)).json()] == [pid]
    assert [p["id"] for p in (await listed(rival)).json()] == [rivals["id"]]
    assert (await listed(outsider)).json() == []
    assert (await listed(other_client)).json() == []
    assert_problem(await listed(None), 401)
    # my proposals
    mine = await app.client.get(f"{API}/proposals/mine", headers=dev.auth)
    assert [p["id"] for p in mine.json()] == [pid]
    assert (await app.client.get(f"{API}/proposals/mine", headers=outsider.auth)).json() == []
    assert_problem(await app.client.get(f"{API}/proposals/mine"), 401)
    assert_problem(await read(app, owner, str(uuid.uuid4())), 404)

    # the allowed moves, last
    assert (await act(app, owner, pid, "shortlist")).status_code == 200
    accepted = await act(app, owner, pid, "accept")
    assert accepted.status_code == 200
    contract_id = accepted.json()["contract_id"]
    for name in strangers:
        assert_problem(
            await app.client.get(f"{API}/contracts/{contract_id}", headers=auth(people[name])), 404
        )
        assert await contracts_of(app, people[name]) == []  # type: ignore[arg-type]
    assert_problem(await app.client.get(f"{API}/contracts/{contract_id}"), 401)
    for party in (owner, dev):
        assert (await app.client.get(f"{API}/contracts/{contract_id}", headers=party.auth)).status_code == 200


# ---------------------------------------------------------------------------
# Comparing proposals
# ---------------------------------------------------------------------------


async def test_the_clients_comparison_list(app: App) -> None:
    owner = await client(app)
    full = await developer(app, "Full match", skills=["python", "django", "postgresql"])
    some = await developer(app, "One of three", skills=["python", "react"])
    none = await developer(app, "No match")
    project = await post_project(app, owner, skills=["python", "django", "postgresql"])
    # submitted in this order
    by_full = await bid(app, full, project, amount=400_00, duration_days=5)
    by_some = await bid(app, some, project, amount=200_00, duration_days=30)
    by_none = await bid(app, none, project, amount=300_00, duration_days=20)
    names = {by_full["id"]: "full", by_some["id"]: "some", by_none["id"]: "none"}

    async def order(**params: Any) -> list[str]:
        response = await app.client.get(
            f"{API}/projects/{project['id']}/proposals", headers=owner.auth, params=params
        )
        assert response.status_code == 200, response.text
        return [names[p["id"]] for p in response.json()]

    assert await order() == ["full", "some", "none"], "by submission by default"
    assert await order(sort="submitted") == ["full", "some", "none"]
    assert await order(sort="newest") == ["none", "some", "full"]
    assert await order(sort="price") == ["some", "none", "full"]
    assert await order(sort="duration") == ["full", "none", "some"]
    assert await order(sort="skill_match") == ["full", "some", "none"]
    assert_problem(
        await app.client.get(
            f"{API}/projects/{project['id']}/proposals", headers=owner.auth, params={"sort": "random"}
        ),
        400,
    )

    listed = {
        names[p["id"]]: p
        for p in (
            await app.client.get(f"{API}/projects/{project['id']}/proposals", headers=owner.auth)
        ).json()
    }
    assert {k: v["skill_match"] for k, v in listed.items()} == {"full": 1.0, "some": 0.33, "none": 0.0}
    assert listed["full"]["developer"]["skills"] == ["python", "django", "postgresql"]
    assert listed["full"]["developer"]["display_name"] == "Full match"
    assert listed["full"]["developer"]["completed_jobs"] == 0
    assert listed["full"]["developer"]["rating"] is None

    # status filter
    await act(app, owner, by_some["id"], "shortlist")
    await act(app, none, by_none["id"], "withdraw")
    assert await order(status="shortlisted") == ["some"]
    assert await order(status="submitted") == ["full"]
    assert await order(status="withdrawn") == ["none"]
    assert await order(status="declined") == []
    assert await order(status="submitted", sort="price") == ["full"]
    assert_problem(
        await app.client.get(
            f"{API}/projects/{project['id']}/proposals", headers=owner.auth, params={"status": "lost"}
        ),
        400,
    )

    # a project asking no skills: everyone matches
    open_brief = await post_project(app, owner, skills=[])
    assert (await bid(app, none, open_brief))["skill_match"] == 1.0


# ---------------------------------------------------------------------------
# Hiring
# ---------------------------------------------------------------------------


async def test_accepting_hires_through_a_contract(apps: Apps) -> None:
    events = EventLog()
    app = await open_market(apps, events=events)
    owner, other_client = await client(app, "Owner"), await client(app, "Other client")
    winner, loser, shortlisted_dev, quitter = (
        await developer(app, "Winner"),
        await developer(app, "Loser"),
        await developer(app, "Shortlisted"),
        await developer(app, "Quitter"),
    )
    project = await post_project(app, owner, title="Invoicing API with reminders")
    plan = [{"title": "Design", "amount": 120_00}, {"title": "Build", "amount": 230_00}]
    won = await bid(app, winner, project, amount=350_00, milestones=plan)
    lost = await bid(app, loser, project)
    short = await bid(app, shortlisted_dev, project)
    quit_ = await bid(app, quitter, project)
    await act(app, owner, short["id"], "shortlist")
    await act(app, quitter, quit_["id"], "withdraw")

    response = await act(app, owner, won["id"], "accept")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["proposal"]["status"] == "accepted"
    assert body["proposal"]["contract_id"] == body["contract_id"]
    contract_id = body["contract_id"]

    hired = await project_of(app, owner, project)
    assert hired["status"] == "hired"
    for proposal, dev, status in (
        (lost, loser, "declined"),
        (short, shortlisted_dev, "declined"),
        (quit_, quitter, "withdrawn"),
        (won, winner, "accepted"),
    ):
        seen = (await read(app, dev, proposal["id"])).json()
        assert seen["status"] == status, dev
        expected = "The client hired another developer for this project." if status == "declined" else ""
        assert seen["decline_message"] == expected

    # the contract: the milestone plan carried over, seen by both parties only
    for party in (owner, winner):
        contracts = await contracts_of(app, party)
        assert [c["id"] for c in contracts] == [contract_id]
    contract = (await contracts_of(app, owner))[0]
    assert contract["client_id"] == owner.id
    assert contract["developer_id"] == winner.id
    assert (contract["origin_type"], contract["origin_id"]) == ("proposal", won["id"])
    assert contract["title"] == "Invoicing API with reminders"
    assert (contract["currency"], contract["total"], contract["hourly"]) == ("USD", 350_00, False)
    assert contract["status"] == "pending_funding"
    assert [(m["position"], m["title"], m["amount"], m["status"]) for m in contract["milestones"]] == [
        (0, "Design", 120_00, "pending"),
        (1, "Build", 230_00, "pending"),
    ]
    for stranger in (loser, other_client):
        assert await contracts_of(app, stranger) == []
        assert_problem(await app.client.get(f"{API}/contracts/{contract_id}", headers=stranger.auth), 404)

    # nothing more happens on a hired project
    assert_problem(await act(app, owner, won["id"], "accept"), 409)
    assert_problem(await act(app, owner, lost["id"], "accept"), 409)
    assert_problem(await act(app, owner, won["id"], "decline"), 409)
    assert_problem(await act(app, winner, won["id"], "withdraw"), 409)
    assert_problem(await submit(app, quitter, project), 409)
    assert len(await contracts_of(app, owner)) == 1

    # the events, through the outbox and the stream
    def seen_all() -> bool:
        return (
            bool(events.of("proposal.accepted", proposal_id=won["id"]))
            and bool(events.of("project.hired", project_id=project["id"]))
            and bool(events.of("contract.created", contract_id=contract_id))
            and len(events.of("proposal.declined", project_id=project["id"])) == 2
        )

    await events.wait_for(seen_all)
    accepted = events.of("proposal.accepted")[0]
    assert accepted.payload == {
        "proposal_id": won["id"],
        "project_id": project["id"],
        "developer_id": winner.id,
        "client_id": owner.id,
        "contract_id": contract_id,
    }
    assert str(accepted.actor_id) == owner.id
    assert events.of("project.hired")[0].payload["developer_id"] == winner.id
    created = events.of("contract.created")[0].payload
    assert (created["total"], created["currency"], created["origin_id"]) == (350_00, "USD", won["id"])
    assert {e.payload["proposal_id"] for e in events.of("proposal.declined")} == {lost["id"], short["id"]}
    assert len(events.of("proposal.accepted")) == 1


async def test_a_contract_without_a_plan_has_one_milestone(app: App) -> None:
    owner = await client(app)
    dev = await developer(app)
    fixed = await post_project(app, owner, title="Fix the checkout page")
    hourly = await post_project(
        app, owner, budget={"type": "hourly", "min": 40_00, "max": 80_00, "currency": "EUR"}
    )
    fixed_bid = await bid(app, dev, fixed, amount=275_00)
    hourly_bid = await bid(app, dev, hourly, amount=60_00, currency="EUR")
    assert (await act(app, owner, fixed_bid["id"], "accept")).status_code == 200
    assert (await act(app, owner, hourly_bid["id"], "accept")).status_code == 200
    contracts = {c["origin_id"]: c for c in await contracts_of(app, dev)}
    one = contracts[fixed_bid["id"]]
    assert (one["total"], one["hourly"], one["currency"]) == (275_00, False, "USD")
    assert [(m["title"], m["amount"]) for m in one["milestones"]] == [("Fix the checkout page", 275_00)]
    rate = contracts[hourly_bid["id"]]
    assert (rate["total"], rate["hourly"], rate["currency"]) == (40 * 60_00, True, "EUR")
    assert [(m["title"], m["amount"]) for m in rate["milestones"]] == [("First week (40 hours)", 40 * 60_00)]


# ---------------------------------------------------------------------------
# Races (two app instances on one database: the database's locks decide)
# ---------------------------------------------------------------------------


ROUNDS = 5


async def two_instances(apps: Apps) -> tuple[App, App]:
    settings = await market_settings(apps)
    return await open_market(apps, settings=settings), await open_market(apps, settings=settings)


async def test_simultaneous_acceptances_hire_exactly_once(apps: Apps) -> None:
    a, b = await two_instances(apps)
    owner = await client(a)
    dev1, dev2 = await developer(a, "First"), await developer(b, "Second")
    for round_ in range(ROUNDS):
        project = await post_project(a, owner, title=f"Race number {round_ + 1}")
        p1, p2 = await bid(a, dev1, project), await bid(b, dev2, project)
        answers = await send_concurrently(
            (a, "POST", f"{API}/proposals/{p1['id']}/accept", owner.auth, None),
            (b, "POST", f"{API}/proposals/{p2['id']}/accept", owner.auth, None),
        )
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 409], f"round {round_}: {answers}"
        winner = p1 if answers[0][0] == 200 else p2
        loser = p2 if winner is p1 else p1
        assert (await project_of(a, owner, project))["status"] == "hired"
        on_project = [c for c in await contracts_of(b, owner) if c["origin_id"] in (p1["id"], p2["id"])]
        assert [c["origin_id"] for c in on_project] == [winner["id"]], f"round {round_}: {on_project}"
        assert (await read(a, owner, winner["id"])).json()["status"] == "accepted"
        assert (await read(b, owner, loser["id"])).json()["status"] == "declined"
    assert len(await contracts_of(a, owner)) == ROUNDS


async def test_simultaneous_acceptances_of_one_proposal_make_one_contract(apps: Apps) -> None:
    a, b = await two_instances(apps)
    owner = await client(a)
    dev = await developer(a)
    for _ in range(ROUNDS):
        project = await post_project(a, owner)
        proposal = await bid(a, dev, project)
        url = f"{API}/proposals/{proposal['id']}/accept"
        answers = await send_concurrently(
            (a, "POST", url, owner.auth, None), (b, "POST", url, owner.auth, None)
        )
        assert sorted(status for status, _ in answers) == [200, 409], answers
    assert len(await contracts_of(a, owner)) == ROUNDS


async def test_withdrawing_while_the_client_accepts(apps: Apps) -> None:
    """The developer withdraws as the client accepts: one of them wins, and the state agrees
    with the winner (never a withdrawn proposal with a contract, nor an accepted one without)."""
    a, b = await two_instances(apps)
    owner = await client(a)
    dev = await developer(a)
    outcomes = []
    for _ in range(ROUNDS):
        project = await post_project(a, owner)
        proposal = await bid(a, dev, project)
        (accept_status, _), (withdraw_status, _) = await send_concurrently(
            (a, "POST", f"{API}/proposals/{proposal['id']}/accept", owner.auth, None),
            (b, "POST", f"{API}/proposals/{proposal['id']}/withdraw", dev.auth, None),
        )
        final = (await read(a, dev, proposal["id"])).json()
        contracts = [c for c in await contracts_of(a, owner) if c["origin_id"] == proposal["id"]]
        project_status = (await project_of(a, owner, project))["status"]
        outcomes.append((accept_status, withdraw_status, final["status"], len(contracts), project_status))
    allowed = {(200, 409, "accepted", 1, "hired"), (409, 200, "withdrawn", 0, "open")}
    assert set(outcomes) <= allowed, outcomes


async def test_bidding_while_the_client_hires(apps: Apps) -> None:
    """A bid racing the acceptance of another: refused (409), or in before the hire and then
    declined with the rest; never a live proposal left on a hired project."""
    a, b = await two_instances(apps)
    owner = await client(a)
    chosen, late = await developer(a, "Chosen"), await developer(a, "Late")
    outcomes = []
    for _ in range(ROUNDS):
        project = await post_project(a, owner)
        proposal = await bid(a, chosen, project)
        (accept_status, _), (bid_status, late_bid) = await send_concurrently(
            (a, "POST", f"{API}/proposals/{proposal['id']}/accept", owner.auth, None),
            (b, "POST", f"{API}/projects/{project['id']}/proposals", late.auth, proposal_body(project)),
        )
        late_status = (await read(a, late, late_bid["id"])).json()["status"] if bid_status == 201 else None
        after = await project_of(a, owner, project)
        outcomes.append((accept_status, bid_status, late_status, after["status"], after["proposal_count"]))
    allowed = {(200, 409, None, "hired", 1), (200, 201, "declined", "hired", 1)}
    assert set(outcomes) <= allowed, outcomes


async def test_simultaneous_bids_by_one_developer(app: App) -> None:
    owner = await client(app)
    dev = await developer(app)
    for _ in range(3):
        project = await post_project(app, owner)
        url = f"{API}/projects/{project['id']}/proposals"
        body = proposal_body(project)
        answers = await send_concurrently(*[(app, "POST", url, dev.auth, body)] * 3)
        assert sorted(status for status, _ in answers) == [201, 409, 409], answers
        assert (await project_of(app, owner, project))["proposal_count"] == 1


async def _both_roles(app: App) -> Person:
    from tests.integration.test_accounts_api import register

    return await register(
        app.client,
        f"both-{uuid.uuid4().hex[:8]}@example.com",
        name="Both Roles",
        roles=("client", "developer"),
    )
