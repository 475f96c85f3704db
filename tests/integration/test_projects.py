"""The projects API over HTTP: posting, validation, the e-mail gate, editing, the project state
machine, closing, browsing, who may see what, and invitations.

Each test runs a real app on a fresh migrated database (SQLite, or PostgreSQL with
``MERCATO_TEST_DATABASE_URL``). Sign-ups cost ~25 ms of argon2 each, so tests reuse people.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from mercato.core.pagination import encode_cursor
from mercato.core.projects.models import PROJECT_TRANSITIONS, Project, ProjectStatus
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
    open_market,
    post_project,
    project_body,
    set_row,
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


async def get_project(app: App, project_id: str, who: Person | None) -> Any:
    return await app.client.get(f"{API}/projects/{project_id}", headers=who.auth if who else {})


async def status_of(app: App, project_id: str, owner: Person) -> str:
    response = await get_project(app, project_id, owner)
    assert response.status_code == 200, response.text
    return response.json()["status"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# Posting
# ---------------------------------------------------------------------------


async def test_posting_a_project_publishes_it(app: App) -> None:
    owner = await client(app, "Olga Owner")
    response = await app.client.post(
        f"{API}/projects",
        headers=owner.auth,
        json=project_body(
            title="  Build   an invoicing   API ",
            skills=["py", "PostgreSQL", "python"],
            screening_questions=["  Which   frameworks do you know? "],
            visibility="public",
            experience_level="expert",
        ),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "open"
    assert body["published_at"] is not None
    assert body["title"] == "Build an invoicing API", "whitespace is collapsed"
    assert body["skills"] == ["python", "postgresql"], "aliases resolve to slugs, without repeats"
    assert body["screening_questions"] == ["Which frameworks do you know?"]
    assert body["budget"] == {"type": "fixed", "min": 100_00, "max": 500_00, "currency": "USD"}
    assert body["category"] == "web-backend"
    assert body["client_id"] == owner.id
    assert body["client_name"] == "Olga Owner"
    assert body["is_owner"] is True
    assert body["my_proposal_id"] is None
    assert body["proposal_count"] == 0
    assert body["experience_level"] == "expert"
    assert body["duration"] == "1_4_weeks"
    assert "<p>" in body["description_html"]

    draft = await post_project(app, owner, publish=False, title="A draft for later")
    assert draft["status"] == "draft"
    assert draft["published_at"] is None

    mine = await app.client.get(f"{API}/projects/mine", headers=owner.auth)
    assert mine.status_code == 200
    assert [p["id"] for p in mine.json()] == [draft["id"], body["id"]], "newest first, drafts included"
    assert_problem(await app.client.get(f"{API}/projects/mine"), 401)


async def test_categories_are_a_tree(app: App) -> None:
    response = await app.client.get(f"{API}/categories")
    assert response.status_code == 200
    web = next(c for c in response.json() if c["slug"] == "web")
    assert web["parent"] is None
    assert "web-backend" in [c["slug"] for c in web["children"]]


async def test_posting_validation(app: App) -> None:
    owner = await client(app)
    dev = await developer(app)

    async def refused(status: int, field: str | None = None, who: Person = owner, **changes: Any) -> None:
        response = await app.client.post(f"{API}/projects", headers=who.auth, json=project_body(**changes))
        assert_problem(response, status, field=field)

    await refused(400, "category", category="no-such-category")
    await refused(400, "skills", skills=["python", "cobol-on-mars"])
    await refused(400, "budget", budget={"type": "fixed", "min": 500_00, "max": 100_00})
    await refused(400, "budget", budget={"type": "fixed", "min": 100, "max": 100 * 100 + 1})
    await refused(400, "budget", budget={"type": "weekly", "min": 100, "max": 200})
    await refused(400, "budget", budget={"type": "fixed", "min": 0, "max": 200})
    await refused(400, "budget", budget={"type": "fixed", "min": 100, "max": 200, "currency": "usd"})
    await refused(400, "screening_questions", screening_questions=[f"Question {i}?" for i in range(6)])
    await refused(400, "screening_questions", screening_questions=["Fine?", ""])
    await refused(400, "screening_questions", screening_questions=["Fine?", "   "])
    await refused(400, "title", title="Hey")
    await refused(400, "description", description="Too short")
    await refused(400, "duration", duration="forever")
    await refused(400, "visibility", visibility="secret")
    await refused(400, None, unexpected="field")
    await refused(400, "title", title=None)
    await refused(403, who=dev)  # developers do not post projects
    assert_problem(await app.client.post(f"{API}/projects", json=project_body()), 401)
    assert (await app.client.get(f"{API}/projects/mine", headers=owner.auth)).json() == []

    # the edges that are allowed
    ok = await post_project(
        app,
        owner,
        budget={"type": "hourly", "min": 100, "max": 100 * 100, "currency": "EUR"},
        screening_questions=[f"Question {i}?" for i in range(5)],
        title="Short",
    )
    assert ok["budget"] == {"type": "hourly", "min": 100, "max": 10_000, "currency": "EUR"}
    same = await post_project(app, owner, budget={"type": "fixed", "min": 300, "max": 300})
    assert same["budget"]["min"] == same["budget"]["max"] == 300


async def test_unverified_clients_may_draft_but_not_publish(apps: Apps) -> None:
    app = await open_market(apps, require_verified_email=True)
    owner = await client(app)
    assert_problem(await app.client.post(f"{API}/projects", headers=owner.auth, json=project_body()), 403)
    assert (await app.client.get(f"{API}/projects/mine", headers=owner.auth)).json() == [], "nothing was kept"

    draft = await post_project(app, owner, publish=False)
    assert draft["status"] == "draft"
    publish = f"{API}/projects/{draft['id']}/publish"
    assert_problem(await app.client.post(publish, headers=owner.auth), 403)
    edited = await app.client.patch(
        f"{API}/projects/{draft['id']}", headers=owner.auth, json={"title": "Still a draft"}
    )
    assert edited.status_code == 200, "drafts can be edited before verifying"

    await verify_email(app, owner)
    published = await app.client.post(publish, headers=owner.auth)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "open"
    assert (await post_project(app, owner))["status"] == "open"


# ---------------------------------------------------------------------------
# The project state machine
# ---------------------------------------------------------------------------


async def test_draft_is_published_once(app: App) -> None:
    owner = await client(app)
    draft = await post_project(app, owner, publish=False)
    url = f"{API}/projects/{draft['id']}/publish"
    response = await app.client.post(url, headers=owner.auth)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "open"
    assert response.json()["published_at"] is not None
    assert_problem(await app.client.post(url, headers=owner.auth), 409)
    assert_problem(await app.client.post(f"{API}/projects/{uuid.uuid4()}/publish", headers=owner.auth), 404)
    assert_problem(await app.client.post(url), 401)


ACTIONS = {"publish": ProjectStatus.OPEN, "close": ProjectStatus.CLOSED, "cancel": ProjectStatus.CANCELLED}
"""The project routes that change its status, and the status each asks for."""


async def project_in(app: App, owner: Person, dev: Person, state: str) -> dict[str, Any]:
    """A fresh project of ``owner`` in ``state``, reached through the API where a route leads there."""
    project = await post_project(app, owner, publish=state != ProjectStatus.DRAFT)
    if state in (ProjectStatus.DRAFT, ProjectStatus.OPEN):
        return project
    if state == ProjectStatus.HIRED:
        proposal = await bid(app, dev, project)
        accepted = await app.client.post(f"{API}/proposals/{proposal['id']}/accept", headers=owner.auth)
        assert accepted.status_code == 200, accepted.text
    elif state in (ProjectStatus.CLOSED, ProjectStatus.CANCELLED):
        action = "close" if state == ProjectStatus.CLOSED else "cancel"
        response = await app.client.post(f"{API}/projects/{project['id']}/{action}", headers=owner.auth)
        assert response.status_code == 200, response.text
    else:  # completed: no route of this domain leads there (the contract's completion will)
        await set_row(app, Project, project["id"], status=state)
    assert await status_of(app, project["id"], owner) == state
    return project


@pytest.mark.parametrize("state", [s.value for s in ProjectStatus])
async def test_every_project_transition_through_the_api(app: App, state: str) -> None:
    """Each status-changing route from each status: 200 exactly where PROJECT_TRANSITIONS allows
    it (hired → cancelled is checked on its own below), 409 elsewhere."""
    owner = await client(app)
    dev = await developer(app)
    for action, target in ACTIONS.items():
        if state == ProjectStatus.HIRED and action == "cancel":
            continue
        project = await project_in(app, owner, dev, state)
        response = await app.client.post(f"{API}/projects/{project['id']}/{action}", headers=owner.auth)
        if target in PROJECT_TRANSITIONS[state]:
            assert response.status_code == 200, f"{state} --{action}--> {response.text}"
            assert response.json()["status"] == target
        else:
            assert_problem(response, 409)
            assert await status_of(app, project["id"], owner) == state


async def test_a_hired_project_cannot_be_cancelled_from_the_projects_api(app: App) -> None:
    """``POST /projects/{id}/cancel`` is documented as "Cancel a draft or open project". A hired
    project has a contract (pending funding): ending it goes through the contract, else the
    project says cancelled while its contract and accepted proposal live on."""
    owner = await client(app)
    dev = await developer(app)
    project = await project_in(app, owner, dev, ProjectStatus.HIRED)
    response = await app.client.post(f"{API}/projects/{project['id']}/cancel", headers=owner.auth)
    assert_problem(response, 409)
    assert await status_of(app, project["id"], owner) == "hired"


async def test_only_the_owner_changes_a_projects_status(app: App) -> None:
    owner, other = await client(app), await client(app)
    dev = await developer(app)
    public = await post_project(app, owner)
    draft = await post_project(app, owner, publish=False)
    for action in ACTIONS:
        # visible to them: 403; not visible (a draft): 404; anonymous: 401
        assert_problem(
            await app.client.post(f"{API}/projects/{public['id']}/{action}", headers=other.auth), 403
        )
        assert_problem(
            await app.client.post(f"{API}/projects/{public['id']}/{action}", headers=dev.auth), 403
        )
        assert_problem(
            await app.client.post(f"{API}/projects/{draft['id']}/{action}", headers=other.auth), 404
        )
        assert_problem(await app.client.post(f"{API}/projects/{public['id']}/{action}"), 401)
    assert await status_of(app, public["id"], owner) == "open"
    assert await status_of(app, draft["id"], owner) == "draft"


@pytest.mark.parametrize("action", ["close", "cancel"])
async def test_ending_a_project_declines_its_live_proposals(apps: Apps, action: str) -> None:
    events = EventLog()
    app = await open_market(apps, events=events)
    owner = await client(app)
    devs = [await developer(app, f"Dev {i}") for i in range(3)]
    project = await post_project(app, owner)
    submitted, shortlisted, withdrawn = [await bid(app, d, project) for d in devs]
    assert (
        await app.client.post(f"{API}/proposals/{shortlisted['id']}/shortlist", headers=owner.auth)
    ).status_code == 200
    assert (
        await app.client.post(f"{API}/proposals/{withdrawn['id']}/withdraw", headers=devs[2].auth)
    ).status_code == 200
    assert (await get_project(app, project["id"], owner)).json()["proposal_count"] == 2

    response = await app.client.post(f"{API}/projects/{project['id']}/{action}", headers=owner.auth)
    assert response.status_code == 200, response.text
    ended = response.json()
    assert ended["status"] == ("closed" if action == "close" else "cancelled")
    assert ended["proposal_count"] == 0

    for proposal, dev, status in (
        (submitted, devs[0], "declined"),
        (shortlisted, devs[1], "declined"),
        (withdrawn, devs[2], "withdrawn"),
    ):
        seen = (await app.client.get(f"{API}/proposals/{proposal['id']}", headers=dev.auth)).json()
        assert seen["status"] == status
        assert seen["decline_message"] == ("The client closed this project." if status == "declined" else "")

    await events.wait_for(
        lambda: (
            bool(events.of("project.closed", project_id=project["id"]))
            and len(events.of("proposal.declined", project_id=project["id"])) == 2
        )
    )
    assert events.of("project.closed")[0].payload["status"] == ended["status"]
    declined = {e.payload["proposal_id"] for e in events.of("proposal.declined")}
    assert declined == {submitted["id"], shortlisted["id"]}
    assert all(
        e.payload["message"] == "The client closed this project." for e in events.of("proposal.declined")
    )


# ---------------------------------------------------------------------------
# Editing
# ---------------------------------------------------------------------------


async def test_edit_rules(app: App) -> None:
    owner, other = await client(app), await client(app)
    dev = await developer(app)
    draft = await post_project(app, owner, publish=False)
    project = await post_project(app, owner)

    async def edit(project_id: str, who: Person | None = owner, **changes: Any) -> Any:
        return await app.client.patch(
            f"{API}/projects/{project_id}", headers=who.auth if who else {}, json=changes
        )

    response = await edit(
        draft["id"], title="A better   draft title", skills=["react"], category="web-frontend"
    )
    assert response.status_code == 200, response.text
    assert (response.json()["title"], response.json()["skills"], response.json()["category"]) == (
        "A better draft title",
        ["react"],
        "web-frontend",
    )
    response = await edit(
        project["id"],
        budget={"type": "hourly", "min": 20_00, "max": 60_00, "currency": "EUR"},
        visibility="invite_only",
        screening_questions=["Why you?"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["budget"] == {"type": "hourly", "min": 20_00, "max": 60_00, "currency": "EUR"}
    assert (body["visibility"], body["screening_questions"], body["status"]) == (
        "invite_only",
        ["Why you?"],
        "open",
    )
    assert body["title"] == project["title"], "absent fields stay as they are"
    assert (await edit(project["id"], visibility="public")).status_code == 200

    # the same rules as posting
    assert_problem(await edit(project["id"], category="nope"), 400, field="category")
    assert_problem(await edit(project["id"], skills=["nope-skill"]), 400, field="skills")
    assert_problem(
        await edit(project["id"], budget={"type": "hourly", "min": 60_00, "max": 20_00, "currency": "EUR"}),
        400,
        field="budget",
    )
    assert_problem(await edit(project["id"], screening_questions=["?"] * 6), 400, field="screening_questions")
    assert_problem(await edit(project["id"], title="Hi"), 400, field="title")

    # who may edit
    assert_problem(await edit(project["id"], who=other, title="Hijacked title"), 403)
    assert_problem(await edit(project["id"], who=dev, title="Hijacked title"), 403)
    assert_problem(await edit(draft["id"], who=other, title="Hijacked title"), 404)
    assert_problem(await edit(project["id"], who=None, title="Hijacked title"), 401)
    assert_problem(await edit(str(uuid.uuid4()), title="Nothing here"), 404)

    # once there are proposals, their currency and budget type are fixed; the amounts are not
    await bid(app, dev, (await get_project(app, project["id"], owner)).json(), currency="EUR")
    assert_problem(
        await edit(project["id"], budget={"type": "hourly", "min": 20_00, "max": 60_00, "currency": "USD"}),
        409,
    )
    assert_problem(
        await edit(project["id"], budget={"type": "fixed", "min": 20_00, "max": 60_00, "currency": "EUR"}),
        409,
    )
    response = await edit(
        project["id"], budget={"type": "hourly", "min": 30_00, "max": 90_00, "currency": "EUR"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["budget"]["max"] == 90_00

    # ended or hired projects are frozen
    closed = await post_project(app, owner)
    cancelled = await post_project(app, owner, publish=False)
    hired = await post_project(app, owner)
    assert (
        await app.client.post(f"{API}/projects/{closed['id']}/close", headers=owner.auth)
    ).status_code == 200
    assert (
        await app.client.post(f"{API}/projects/{cancelled['id']}/cancel", headers=owner.auth)
    ).status_code == 200
    proposal = await bid(app, dev, hired)
    assert (
        await app.client.post(f"{API}/proposals/{proposal['id']}/accept", headers=owner.auth)
    ).status_code == 200
    for frozen in (closed, cancelled, hired):
        assert_problem(await edit(frozen["id"], title="Too late to edit"), 409)
        assert (await get_project(app, frozen["id"], owner)).json()["title"] == frozen["title"]


# ---------------------------------------------------------------------------
# Browsing
# ---------------------------------------------------------------------------


async def browse(app: App, who: Person | None = None, **params: Any) -> Any:
    return await app.client.get(f"{API}/projects", params=params, headers=who.auth if who else {})


async def ids_of(app: App, **params: Any) -> list[str]:
    response = await browse(app, **params)
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["items"]]


async def test_browse_lists_open_public_projects_with_filters(app: App) -> None:
    owner = await client(app)
    dev = await developer(app)
    backend = await post_project(app, owner, category="web-backend", skills=["python", "django"])
    frontend = await post_project(
        app,
        owner,
        category="web-frontend",
        skills=["react"],
        budget={"type": "hourly", "min": 30_00, "max": 80_00, "currency": "USD"},
    )
    ios = await post_project(app, owner, category="mobile-ios", skills=["swift", "python"])
    parent = await post_project(app, owner, category="web", skills=[])
    # never listed
    await post_project(app, owner, publish=False)
    await post_project(app, owner, visibility="invite_only")
    closed = await post_project(app, owner)
    await app.client.post(f"{API}/projects/{closed['id']}/close", headers=owner.auth)
    hired = await post_project(app, owner)
    proposal = await bid(app, dev, hired)
    await app.client.post(f"{API}/proposals/{proposal['id']}/accept", headers=owner.auth)

    listed = [parent["id"], ios["id"], frontend["id"], backend["id"]]
    assert await ids_of(app) == listed, "open public projects only, newest first"
    assert await ids_of(app, category="web") == [parent["id"], frontend["id"], backend["id"]], "children too"
    assert await ids_of(app, category="web-backend") == [backend["id"]]
    assert await ids_of(app, category=["web-frontend", "mobile"]) == [ios["id"], frontend["id"]]
    assert await ids_of(app, category="no-such-category") == []
    assert await ids_of(app, skill="python") == [ios["id"], backend["id"]]
    assert await ids_of(app, skill=["python", "django"]) == [backend["id"]], "every skill asked for"
    assert await ids_of(app, skill="rust") == []
    assert await ids_of(app, budget_type="hourly") == [frontend["id"]]
    assert await ids_of(app, budget_type="fixed") == [parent["id"], ios["id"], backend["id"]]
    assert await ids_of(app, category="web", budget_type="fixed", skill="python") == [backend["id"]]
    assert_problem(await browse(app, budget_type="weekly"), 400)
    assert_problem(await browse(app, limit=0), 400)
    assert_problem(await browse(app, limit=101), 400)

    # what the viewer sees about each item
    anonymous = (await browse(app)).json()["items"]
    assert all(p["is_owner"] is False and p["my_proposal_id"] is None for p in anonymous)
    as_owner = (await browse(app, owner)).json()["items"]
    assert all(p["is_owner"] is True for p in as_owner)


async def walk(app: App, limit: int, **params: Any) -> tuple[list[str], int]:
    """Every id through ``next_cursor`` pages, and how many pages it took."""
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await browse(app, **query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 50, "the cursor walk does not end"


async def test_browse_cursor_walk_covers_every_project_once(app: App) -> None:
    owner = await client(app)
    posted = [await post_project(app, owner, skills=["python"] if i % 2 else ["go"]) for i in range(7)]
    newest_first = [p["id"] for p in reversed(posted)]
    # two projects published at the very same moment: the id breaks the tie
    same_moment = (await get_project(app, posted[0]["id"], owner)).json()["published_at"]
    await set_row(app, Project, posted[1]["id"], published_at=datetime.fromisoformat(same_moment))

    everything = await ids_of(app, limit=100)
    assert sorted(everything) == sorted(newest_first)
    for limit in (1, 2, 3, 7, 8):
        seen, pages = await walk(app, limit)
        assert seen == everything, f"limit={limit}"
        assert pages == -(-len(everything) // limit), f"limit={limit}: no empty last page"
    python = [p["id"] for p in posted if p["skills"] == ["python"]]
    seen, _ = await walk(app, 1, skill="python")
    assert seen == [i for i in everything if i in python], "each once, in order"
    last = (await browse(app, limit=7)).json()
    assert last["next_cursor"] is None, "no empty last page when the items fit exactly"

    for bad in (
        "not-a-cursor!",
        "e30",
        encode_cursor("yesterday", str(uuid.uuid4())),
        encode_cursor("2024-01-01T00:00:00", str(uuid.uuid4())),
        encode_cursor("2024-01-01T00:00:00+00:00", "not-a-uuid"),
        encode_cursor(1),
        base64.urlsafe_b64encode(b"[1,2,3]").decode(),
    ):
        assert_problem(await browse(app, cursor=bad), 400, field="cursor")


# ---------------------------------------------------------------------------
# Who may see a project
# ---------------------------------------------------------------------------


async def test_visibility_matrix(app: App) -> None:
    owner, other = await client(app, "Owner"), await client(app, "Other client")
    invited, bidder, stranger = (
        await developer(app, "Invited"),
        await developer(app, "Bidder"),
        await developer(app, "Stranger"),
    )

    async def seen_by(project: dict[str, Any], expected: dict[str, int]) -> None:
        people: dict[str, Person | None] = {
            "owner": owner,
            "other client": other,
            "invited": invited,
            "bidder": bidder,
            "stranger": stranger,
            "anonymous": None,
        }
        got = {
            name: (await get_project(app, project["id"], who)).status_code
            for name, who in people.items()
            if name in expected
        }
        assert got == expected, project["status"] + "/" + project["visibility"]

    draft = await post_project(app, owner, publish=False)
    await seen_by(draft, {"owner": 200, "other client": 404, "stranger": 404, "anonymous": 404})
    assert_problem(await get_project(app, draft["id"], stranger), 404)
    # an invitation does not reveal a draft
    assert (
        await app.client.post(
            f"{API}/projects/{draft['id']}/invites", headers=owner.auth, json={"developer_id": invited.id}
        )
    ).status_code == 204
    await seen_by(draft, {"invited": 404})

    public = await post_project(app, owner)
    await seen_by(
        public,
        {"owner": 200, "other client": 200, "invited": 200, "bidder": 200, "stranger": 200, "anonymous": 200},
    )

    # invite-only: the owner, invited developers and developers who bid (while it was public)
    secret = await post_project(app, owner)
    proposal = await bid(app, bidder, secret)
    response = await app.client.patch(
        f"{API}/projects/{secret['id']}", headers=owner.auth, json={"visibility": "invite_only"}
    )
    assert response.status_code == 200
    assert (
        await app.client.post(
            f"{API}/projects/{secret['id']}/invites", headers=owner.auth, json={"developer_id": invited.id}
        )
    ).status_code == 204
    await seen_by(
        response.json(),
        {"owner": 200, "invited": 200, "bidder": 200, "stranger": 404, "other client": 404, "anonymous": 404},
    )
    as_bidder = (await get_project(app, secret["id"], bidder)).json()
    assert as_bidder["my_proposal_id"] == proposal["id"]
    assert as_bidder["is_owner"] is False
    # nor does it leak through the proposals list or bidding
    assert_problem(
        await app.client.get(f"{API}/projects/{secret['id']}/proposals", headers=stranger.auth), 404
    )
    assert_problem(
        await app.client.post(
            f"{API}/projects/{secret['id']}/proposals",
            headers=stranger.auth,
            json={"cover_letter": "x" * 30, "amount": 100, "currency": "USD", "duration_days": 3},
        ),
        404,
    )

    # closed and cancelled projects were published: still readable by anyone (links keep working)
    closed = await post_project(app, owner)
    await app.client.post(f"{API}/projects/{closed['id']}/close", headers=owner.auth)
    await seen_by(closed | {"status": "closed"}, {"owner": 200, "stranger": 200, "anonymous": 200})
    assert_problem(await get_project(app, str(uuid.uuid4()), owner), 404)


async def test_a_cancelled_draft_stays_private(app: App) -> None:
    """A draft that is cancelled was never published: it must not become public ("Drafts: the
    owner ... everything else that was ever published: anyone")."""
    owner, other = await client(app), await client(app)
    draft = await post_project(app, owner, publish=False, title="Secret plans, never published")
    assert (
        await app.client.post(f"{API}/projects/{draft['id']}/cancel", headers=owner.auth)
    ).status_code == 200
    assert (await get_project(app, draft["id"], owner)).status_code == 200
    assert_problem(await get_project(app, draft["id"], other), 404)
    assert_problem(await get_project(app, draft["id"], None), 404)


# ---------------------------------------------------------------------------
# Invitations
# ---------------------------------------------------------------------------


async def test_invitations(app: App) -> None:
    owner, other = await client(app, "Owner"), await client(app, "Other client")
    dev, colleague = await developer(app, "Invited dev"), await developer(app, "Colleague")
    both = await register_both(app)
    project = await post_project(app, owner)
    invites = f"{API}/projects/{project['id']}/invites"

    async def invitations(who: Person) -> list[str]:
        response = await app.client.get(f"{API}/me/invitations", headers=who.auth)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()]

    assert await invitations(dev) == []
    response = await app.client.post(
        invites, headers=owner.auth, json={"developer_id": dev.id, "message": "Hi!"}
    )
    assert response.status_code == 204, response.text
    assert (
        await app.client.post(invites, headers=owner.auth, json={"developer_id": dev.id})
    ).status_code == 204
    assert await invitations(dev) == [project["id"]], "once, however often invited"
    assert await invitations(colleague) == []
    assert_problem(await app.client.get(f"{API}/me/invitations"), 401)

    # bad invitations
    assert_problem(
        await app.client.post(invites, headers=owner.auth, json={"developer_id": other.id}),
        400,
        field="developer_id",
    )
    assert_problem(
        await app.client.post(invites, headers=owner.auth, json={"developer_id": str(uuid.uuid4())}),
        400,
        field="developer_id",
    )
    mine = await post_project(app, both)
    assert_problem(
        await app.client.post(
            f"{API}/projects/{mine['id']}/invites", headers=both.auth, json={"developer_id": both.id}
        ),
        400,
        field="developer_id",
    )
    assert_problem(await app.client.post(invites, headers=owner.auth, json={"developer_id": "nope"}), 400)

    # only the owner invites: others who can see the project get 403, others 404, anonymous 401
    assert_problem(
        await app.client.post(invites, headers=other.auth, json={"developer_id": colleague.id}), 403
    )
    assert_problem(await app.client.post(invites, headers=dev.auth, json={"developer_id": colleague.id}), 403)
    draft = await post_project(app, owner, publish=False)
    assert_problem(
        await app.client.post(
            f"{API}/projects/{draft['id']}/invites", headers=other.auth, json={"developer_id": colleague.id}
        ),
        404,
    )
    assert_problem(await app.client.post(invites, json={"developer_id": colleague.id}), 401)
    assert await invitations(colleague) == []

    # a draft's invitation shows once it is published
    assert (
        await app.client.post(
            f"{API}/projects/{draft['id']}/invites", headers=owner.auth, json={"developer_id": colleague.id}
        )
    ).status_code == 204
    assert await invitations(colleague) == []
    await app.client.post(f"{API}/projects/{draft['id']}/publish", headers=owner.auth)
    assert await invitations(colleague) == [draft["id"]]

    # bidding answers the invitation; an ended project takes none
    await bid(app, dev, project)
    assert await invitations(dev) == []
    await app.client.post(f"{API}/projects/{draft['id']}/close", headers=owner.auth)
    assert await invitations(colleague) == []
    assert_problem(
        await app.client.post(
            f"{API}/projects/{draft['id']}/invites", headers=owner.auth, json={"developer_id": dev.id}
        ),
        409,
    )


async def register_both(app: App) -> Person:
    """Someone with both roles."""
    from tests.integration.test_accounts_api import register

    return await register(
        app.client,
        f"both-{uuid.uuid4().hex[:8]}@example.com",
        name="Both Roles",
        roles=("client", "developer"),
    )
