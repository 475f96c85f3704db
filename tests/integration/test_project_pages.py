"""The theme's project pages, driven like a browser without JavaScript: a client posts a project
through the form, developers bid, the client compares, shortlists and hires, and the contract
page shows the plan; plus browsing, invitations, the dashboard and who may see what.

Each "browser" keeps its own cookies on the app's shared test client; every form carries the
CSRF token of the page it came from.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from mercato import create_app
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database
from tests.integration.test_account_pages import Browser, Pages, sign_up

PROJECT_URL = re.compile(r"^/projects/([0-9a-f-]{36})\?done=(\w+)$")
CONTRACT_URL = re.compile(r"^/contracts/([0-9a-f-]{36})\?hired=1$")


@pytest.fixture
async def open_site(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Any]:
    """Start an app (``accounts`` overrides merged into relaxed limits) and browse it."""
    started: list[tuple[AsyncTestClient[Any], Any]] = []

    async def start(**accounts: Any) -> Pages:
        settings = make_settings(
            accounts={
                "login_attempts_per_minute": 1000,
                "login_attempts_per_account": 1000,
                "registrations_per_hour": 1000,
                "require_verified_email": False,
                **accounts,
            }
        )
        settings = _with_database(settings, await databases.create_migrated(settings))
        site = Site(settings)
        client: AsyncTestClient[Any] = AsyncTestClient(create_app(site=site))
        await client.__aenter__()
        started.append((client, settings))
        return Pages(client, site)

    yield start
    for client, _ in reversed(started):
        await client.__aexit__(None, None, None)
    if started:
        await _delete_streams(started[0][1].events.nats_url, {s.events.stream for _, s in started})


@pytest.fixture
async def pages(open_site: Any) -> Pages:
    return await open_site()  # type: ignore[no-any-return]


def project_form(**changes: Any) -> dict[str, Any]:
    """A valid post-a-project form; ``changes`` replace fields."""
    form: dict[str, Any] = {
        "title": "Stripe checkout for a Django shop",
        "description": "We sell **coffee beans** online and need Stripe checkout, refunds and webhooks.",
        "category": "web-backend",
        "skills": "Python, Django",
        "budget_type": "fixed",
        "budget_min": "1000",
        "budget_max": "3,000",
        "currency": "USD",
        "duration": "1_4_weeks",
        "experience_level": "expert",
        "visibility": "public",
        "questions": ["Which payment integrations have you shipped?", "", "", "", ""],
        "action": "publish",
    }
    form.update(changes)
    return form


def bid_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "cover_letter": "I have shipped Stripe checkouts for three Django shops, webhooks included.",
        "amount": "2400",
        "duration_days": "14",
        "milestone_title": ["", "", "", "", ""],
        "milestone_amount": ["", "", "", "", ""],
        "answer_1": "Stripe, Adyen and Mollie.",
    }
    form.update(changes)
    return form


async def person(pages: Pages, email: str, name: str, *roles: str) -> tuple[Browser, str]:
    browser = pages.browser()
    return browser, await sign_up(browser, email, name=name, roles=roles)


async def post_project(client: Browser, **changes: Any) -> str:
    response = await client.post("/projects/new", project_form(**changes))
    assert response.status_code == 303, response.text
    found = PROJECT_URL.match(response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def bid(developer: Browser, project_id: str, **changes: Any) -> None:
    response = await developer.post(f"/projects/{project_id}/proposals", bid_form(**changes))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/projects/{project_id}?done=bid#my-proposal"


async def set_skills(developer: Browser, name: str, skills: str, headline: str = "") -> None:
    saved = await developer.post(
        "/settings/profile",
        {
            "display_name": name,
            "roles": ["developer"],
            "skills": skills,
            "headline": headline,
            "availability": "available",
            "currency": "USD",
        },
    )
    assert saved.status_code == 303, saved.text


def text_of(response: httpx.Response) -> str:
    """The page's text without tags, whitespace collapsed (for reading what people see)."""
    body = re.sub(r"<script.*?</script>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


async def listed(browser: Browser, url: str, text: str) -> httpx.Response:
    """Poll a browse page until ``text`` shows (the search index follows commits through events)."""
    for _ in range(100):
        page = await browser.get(url)
        if text in text_of(page):
            return page
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never showed {text!r}: {text_of(page)[:2000]}")


def proposal_ids(page: httpx.Response) -> list[str]:
    return re.findall(r'id="proposal-([0-9a-f-]{36})"', page.text)


# ---------------------------------------------------------------------------
# Posting a project
# ---------------------------------------------------------------------------


async def test_a_client_posts_a_project_and_sees_inline_errors_first(pages: Pages) -> None:
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    form = await grace.get("/projects/new")
    assert form.status_code == 200
    assert 'name="budget_type" value="hourly"' in form.text
    assert '<optgroup label="Web development">' in form.text
    assert "Save as draft" in form.text

    wrong = await grace.post(
        "/projects/new",
        project_form(
            title="Hi",
            budget_min="lots",
            budget_max="100",
            category="",
            duration="forever",
            description="Build me a **shop** with Stripe checkout and refunds, please.",
        ),
    )
    assert wrong.status_code == 400
    page = text_of(wrong)
    assert "Please correct the 4 fields marked below." in page
    assert "Give the project a title of at least 5 characters." in page
    assert "Enter an amount such as 45 or 62.50." in page
    assert "Pick a category." in page
    assert "Pick how long you expect the work to take." in page
    assert 'id="title" name="title" type="text" value="Hi"' in wrong.text, "input kept"
    assert "Build me a **shop** with Stripe checkout" in wrong.text
    assert 'value="Which payment integrations have you shipped?"' in wrong.text
    assert 'aria-invalid="true"' in wrong.text

    upside_down = await grace.post("/projects/new", project_form(budget_min="5000", budget_max="500"))
    assert upside_down.status_code == 400
    assert "The maximum must be at least the minimum." in text_of(upside_down)

    unknown = await grace.post("/projects/new", project_form(skills="Python, Cobol-9000"))
    assert unknown.status_code == 400
    assert "Unknown skill: cobol-9000. Pick skills from the list." in text_of(unknown)
    assert 'value="Python, Cobol-9000"' in unknown.text
    assert "/api/v1" not in text_of(unknown)

    project_id = await post_project(grace)
    shown = await grace.get(f"/projects/{project_id}?done=posted")
    assert shown.status_code == 200
    page = text_of(shown)
    assert "Your project is published" in page
    assert "Stripe checkout for a Django shop" in page
    assert "$1,000 \u2013 $3,000" in page
    assert "<strong>coffee beans</strong>" in shown.text
    assert 'data-status="open"' in shown.text
    assert "Which payment integrations have you shipped?" in page
    assert "Back-end & APIs" in page
    assert "1 to 4 weeks" in page
    assert "Expert" in page
    assert "Edit project" in page
    assert "Close to new proposals" in page

    hourly = await post_project(
        grace,
        title="Ongoing Django maintenance",
        budget_type="hourly",
        budget_min="40",
        budget_max="80.50",
        currency="EUR",
        questions=[],
    )
    assert "\u20ac40 \u2013 \u20ac80.50/hr" in text_of(await grace.get(f"/projects/{hourly}"))


async def test_drafts_and_invite_only_projects_are_hidden_from_strangers(pages: Pages) -> None:
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    stranger, _ = await person(pages, "eve@example.com", "Eve Stranger", "developer")
    anonymous = pages.browser()
    draft = await post_project(grace, action="draft")
    assert "Saved as a draft" in text_of(await grace.get(f"/projects/{draft}?done=draft"))
    secret = await post_project(grace, title="Invite-only audit", visibility="invite_only")
    for project_id in (draft, secret):
        assert (await stranger.get(f"/projects/{project_id}")).status_code == 404
        assert (await anonymous.get(f"/projects/{project_id}")).status_code == 404
        refused = await stranger.post(f"/projects/{project_id}/proposals", bid_form())
        assert refused.status_code == 404
    assert (await stranger.post(f"/projects/{draft}/publish")).status_code == 404

    published = await grace.post(f"/projects/{draft}/publish")
    assert published.status_code == 303
    assert published.headers["location"] == f"/projects/{draft}?done=published"
    assert (await stranger.get(f"/projects/{draft}")).status_code == 200


async def test_the_client_role_and_a_verified_address_are_explained(open_site: Any) -> None:
    pages = await open_site(require_verified_email=True)
    ada, _ = await person(pages, "ada@example.com", "Ada Lovelace", "developer")
    page = await ada.get("/projects/new")
    assert page.status_code == 200
    assert "Posting projects needs the client role" in text_of(page)
    assert 'href="/settings/profile"' in page.text
    assert 'name="title"' not in page.text
    refused = await ada.post("/projects/new", project_form())
    assert refused.status_code == 403
    assert "Posting projects needs the client role" in text_of(refused)

    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    form = await grace.get("/projects/new")
    assert "Verify your e-mail address to publish a project" in text_of(form)
    unverified = await grace.post("/projects/new", project_form())
    assert unverified.status_code == 403
    assert "Verify your e-mail address before you publish" in text_of(unverified)
    assert 'value="Stripe checkout for a Django shop"' in unverified.text, "input kept"
    draft = await post_project(grace, action="draft")
    publish = await grace.post(f"/projects/{draft}/publish")
    assert publish.status_code == 403
    assert "Verify your e-mail address first" in text_of(publish)

    await grace.get(await pages.link_to("grace@example.com", "/verify-email"))
    assert (await grace.post(f"/projects/{draft}/publish")).status_code == 303
    shown = await ada.get(f"/projects/{draft}")
    assert "Verify your e-mail address to send proposals" in text_of(shown)
    assert 'name="cover_letter"' not in shown.text
    assert (await ada.post(f"/projects/{draft}/proposals", bid_form())).status_code == 403


# ---------------------------------------------------------------------------
# Bidding, comparing, hiring
# ---------------------------------------------------------------------------


async def test_developers_bid_and_the_client_compares_shortlists_and_hires(pages: Pages) -> None:
    grace, _grace_id = await person(pages, "grace@example.com", "Grace Hopper", "client")
    ada, ada_id = await person(pages, "ada@example.com", "Ada Lovelace", "developer")
    linus, linus_id = await person(pages, "linus@example.com", "Linus Coder", "developer")
    stranger, _ = await person(pages, "eve@example.com", "Eve Stranger", "client", "developer")
    await set_skills(ada, "Ada Lovelace", "Python", "Payments engineer")
    project_id = await post_project(grace)

    anonymous = await pages.browser().get(f"/projects/{project_id}")
    assert "Log in to bid" in text_of(anonymous)
    assert f'href="/login?next=/projects/{project_id}"' in anonymous.text

    page = await ada.get(f"/projects/{project_id}")
    assert 'name="cover_letter"' in page.text
    assert "Your total price" in text_of(page)
    assert "The client's budget: $1,000 \u2013 $3,000." in text_of(page)

    wrong = await ada.post(
        f"/projects/{project_id}/proposals",
        bid_form(
            cover_letter="Hire me",
            duration_days="0",
            answer_1="",
            milestone_title=["Checkout", "Webhooks", "", "", ""],
            milestone_amount=["1000", "1000", "", "", ""],
        ),
    )
    assert wrong.status_code == 400
    text = text_of(wrong)
    assert "Write at least 20 characters" in text
    assert "Enter a number of days between 1 and 730" in text
    assert "The milestones add up to $2,000; they must add up to your total price of $2,400." in text
    assert "Answer this question." in text
    assert 'value="Webhooks"' in wrong.text, "input kept"

    too_much = await ada.post(f"/projects/{project_id}/proposals", bid_form(amount="50000"))
    assert too_much.status_code == 400
    assert "more than ten times the client's budget" in text_of(too_much)

    await bid(
        ada,
        project_id,
        milestone_title=["Checkout", "Webhooks and refunds", "", "", ""],
        milestone_amount=["1,400", "1000", "", "", ""],
    )
    mine = await ada.get(f"/projects/{project_id}?done=bid")
    text = text_of(mine)
    assert "Your proposal is sent" in text
    assert "Your proposal" in text
    assert 'data-status="submitted"' in mine.text
    assert "$2,400" in text
    assert "14 days" in text
    assert "Webhooks and refunds" in text
    assert "Stripe, Adyen and Mollie." in text
    assert 'name="cover_letter"' not in mine.text
    again = await ada.post(f"/projects/{project_id}/proposals", bid_form())
    assert again.status_code == 409
    assert "already made a proposal" in text_of(again)

    await bid(linus, project_id, amount="1800.50", duration_days="30", answer_1="Stripe, twice.")

    compare = await grace.get(f"/projects/{project_id}")
    text = text_of(compare)
    assert "Proposals 2" in text
    for expected in (
        "Ada Lovelace",
        "Payments engineer",
        "Linus Coder",
        "$2,400",
        "$1,800.50",
        "14 days",
        "30 days",
        "50%",
        "0%",
        "No reviews yet",
        "Stripe, twice.",
        "Webhooks and refunds",
    ):
        assert expected in text, expected
    assert f'href="/users/{ada_id}"' in compare.text
    assert f'href="/users/{linus_id}"' in compare.text
    assert compare.text.count('<details class="proposal-more">') >= 4  # cover letters are collapsible
    ada_proposal, linus_proposal = proposal_ids(compare)[::-1]  # newest first: Linus, then Ada

    by_price = await grace.get(f"/projects/{project_id}?sort=price")
    assert proposal_ids(by_price) == [linus_proposal, ada_proposal]
    by_match = await grace.get(f"/projects/{project_id}?sort=skill_match")
    assert proposal_ids(by_match) == [ada_proposal, linus_proposal]
    by_duration = await grace.get(f"/projects/{project_id}?sort=duration")
    assert proposal_ids(by_duration) == [ada_proposal, linus_proposal]

    # the others never see the comparison, nor act on proposals
    assert "Linus Coder" not in text_of(await ada.get(f"/projects/{project_id}"))
    assert (await stranger.post(f"/proposals/{ada_proposal}/shortlist")).status_code == 404
    assert (await linus.post(f"/proposals/{ada_proposal}/shortlist")).status_code == 404
    assert (await ada.post(f"/proposals/{ada_proposal}/shortlist")).status_code == 403

    shortlisted = await grace.post(f"/proposals/{ada_proposal}/shortlist")
    assert shortlisted.status_code == 303
    assert (
        shortlisted.headers["location"] == f"/projects/{project_id}?done=shortlisted#proposal-{ada_proposal}"
    )
    only = await grace.get(f"/projects/{project_id}?status=shortlisted")
    assert proposal_ids(only) == [ada_proposal]
    assert "Shortlisted 1" in text_of(only)
    assert "The client shortlisted you" in text_of(await ada.get(f"/projects/{project_id}"))
    assert "Your shortlist" in text_of(await grace.get("/dashboard"))

    unconfirmed = await grace.post(f"/proposals/{ada_proposal}/accept", {})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in text_of(unconfirmed)
    hired = await grace.post(f"/proposals/{ada_proposal}/accept", {"confirm": "yes"})
    assert hired.status_code == 303
    found = CONTRACT_URL.match(hired.headers["location"])
    assert found, hired.headers["location"]
    contract_id = found.group(1)

    contract = await grace.get(hired.headers["location"])
    assert contract.status_code == 200
    text = text_of(contract)
    assert "You hired Ada Lovelace" in text
    for expected in (
        "Stripe checkout for a Django shop",
        "Checkout",
        "$1,400",
        "Webhooks and refunds",
        "$1,000",
        "$2,400",
        "Grace Hopper",
        "Ada Lovelace",
        "Awaiting funding",
    ):
        assert expected in text, expected
    assert f'href="/projects/{project_id}"' in contract.text
    assert (await ada.get(f"/contracts/{contract_id}")).status_code == 200
    assert (await linus.get(f"/contracts/{contract_id}")).status_code == 404
    assert (await stranger.get(f"/contracts/{contract_id}")).status_code == 404
    assert (await pages.browser().get(f"/contracts/{contract_id}", follow=False)).status_code == 303

    after = await grace.get(f"/projects/{project_id}")
    assert 'data-status="hired"' in after.text
    assert f'href="/contracts/{contract_id}"' in after.text
    declined = text_of(await linus.get(f"/projects/{project_id}"))
    assert "The client declined this proposal: \u201cThe client hired another developer" in declined
    assert "You are hired!" in text_of(await ada.get(f"/projects/{project_id}"))


async def test_developers_edit_withdraw_and_bid_again_and_clients_decline(pages: Pages) -> None:
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    ada, _ = await person(pages, "ada@example.com", "Ada Lovelace", "developer")
    project_id = await post_project(grace, questions=[])
    await bid(ada, project_id, answer_1="")
    page = await ada.get(f"/projects/{project_id}")
    proposal_id = re.search(r'href="/proposals/([0-9a-f-]{36})/edit', page.text).group(1)  # type: ignore[union-attr]

    edit = await ada.get(f"/proposals/{proposal_id}/edit")
    assert edit.status_code == 200
    assert "Edit your proposal" in text_of(edit)
    assert 'value="2400"' in edit.text
    changed = await ada.post(f"/proposals/{proposal_id}/edit", bid_form(amount="2,100.50", answer_1=""))
    assert changed.status_code == 303
    assert "$2,100.50" in text_of(await ada.get(f"/projects/{project_id}"))
    wrong = await ada.post(f"/proposals/{proposal_id}/edit", bid_form(duration_days="soon", answer_1=""))
    assert wrong.status_code == 400
    assert "Enter a number of days" in text_of(wrong)

    withdrawn = await ada.post(f"/proposals/{proposal_id}/withdraw")
    assert withdrawn.status_code == 303
    page = await ada.get(withdrawn.headers["location"].split("#")[0])
    assert "Your proposal is withdrawn" in text_of(page)
    assert "Bid again" in text_of(page)
    assert 'value="2100.50"' in page.text, "the old terms fill the form"
    assert (await ada.post(f"/proposals/{proposal_id}/withdraw")).status_code == 409

    await bid(ada, project_id, answer_1="")
    declined = await grace.post(
        f"/proposals/{proposal_id}/decline", {"message": "We went with a smaller scope."}
    )
    assert declined.status_code == 303
    assert "\u201cWe went with a smaller scope.\u201d" in text_of(await ada.get(f"/projects/{project_id}"))
    past = text_of(await ada.get("/dashboard"))
    assert "Past proposals 1" in past


async def test_clients_invite_developers_by_profile_link(pages: Pages) -> None:
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    ada, ada_id = await person(pages, "ada@example.com", "Ada Lovelace", "developer")
    project_id = await post_project(grace, title="Invite-only security audit", visibility="invite_only")
    assert (await ada.get(f"/projects/{project_id}")).status_code == 404

    wrong = await grace.post(f"/projects/{project_id}/invites", {"developer": "ada please", "message": ""})
    assert wrong.status_code == 400
    assert "Paste the developer's profile link" in text_of(wrong)
    nobody = await grace.post(
        f"/projects/{project_id}/invites",
        {"developer": "00000000-0000-4000-8000-000000000000", "message": ""},
    )
    assert nobody.status_code == 400
    assert "No developer with this id." in text_of(nobody)

    invited = await grace.post(
        f"/projects/{project_id}/invites",
        {"developer": f"https://market.example/users/{ada_id}", "message": "Keen?"},
    )
    assert invited.status_code == 303
    assert invited.headers["location"] == f"/projects/{project_id}?done=invited"
    assert (await ada.get(f"/projects/{project_id}")).status_code == 200
    dashboard = text_of(await ada.get("/dashboard"))
    assert "Invitations 1" in dashboard
    assert "Invite-only security audit" in dashboard


async def test_clients_close_and_cancel_projects(pages: Pages) -> None:
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    ada, _ = await person(pages, "ada@example.com", "Ada Lovelace", "developer")
    open_one = await post_project(grace, questions=[])
    await bid(ada, open_one, answer_1="")
    closed = await grace.post(f"/projects/{open_one}/close")
    assert closed.status_code == 303
    page = await grace.get(closed.headers["location"])
    assert 'data-status="closed"' in page.text
    assert "Edit project" not in text_of(page)
    assert "The client closed this project." in text_of(await ada.get(f"/projects/{open_one}"))
    again = await grace.post(f"/projects/{open_one}/cancel")
    assert again.status_code == 409
    assert "This project is closed" in text_of(again)  # the service explains why

    draft = await post_project(grace, action="draft")
    assert (await grace.post(f"/projects/{draft}/cancel")).status_code == 303
    assert 'data-status="cancelled"' in (await grace.get(f"/projects/{draft}")).text


async def test_clients_edit_their_projects(pages: Pages) -> None:
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    ada, _ = await person(pages, "ada@example.com", "Ada Lovelace", "developer")
    project_id = await post_project(grace)
    form = await grace.get(f"/projects/{project_id}/edit")
    assert form.status_code == 200
    assert 'value="Stripe checkout for a Django shop"' in form.text
    assert 'value="3000"' in form.text
    assert 'value="Python, Django"' in form.text
    assert (await ada.get(f"/projects/{project_id}/edit")).status_code == 403
    visitor = pages.browser()
    card = text_of(await listed(visitor, "/projects", "Stripe checkout for a Django shop"))
    assert "$1,000 \u2013 $3,000" in card
    assert "No proposals yet" in card

    saved = await grace.post(
        f"/projects/{project_id}/edit", project_form(title="Stripe checkout, refunds too", budget_max="3500")
    )
    assert saved.status_code == 303
    text = text_of(await grace.get(saved.headers["location"]))
    assert "Your changes are saved." in text
    assert "$1,000 \u2013 $3,500" in text
    # The browse page's cards are kept rendered; each change shows there too.
    card = text_of(await listed(visitor, "/projects", "Stripe checkout, refunds too"))
    assert "$1,000 \u2013 $3,500" in card
    assert "Stripe checkout for a Django shop" not in card
    described = project_form(title="Stripe checkout, refunds too", budget_max="3500",
                             description="Refunds through the Stripe dashboard as well.")
    assert (await grace.post(f"/projects/{project_id}/edit", described)).status_code == 303
    await listed(visitor, "/projects", "Refunds through the Stripe dashboard as well.")

    await bid(ada, project_id)
    await listed(visitor, "/projects", "1 proposal")
    locked = await grace.post(f"/projects/{project_id}/edit", project_form(budget_type="hourly"))
    assert locked.status_code == 409
    assert "they cannot change" in text_of(locked)
    wrong = await grace.post(f"/projects/{project_id}/edit", project_form(title=""))
    assert wrong.status_code == 400
    assert "Developers already bid in this budget's currency and type" in text_of(wrong)
    form = await grace.get(f"/projects/{project_id}/edit")
    assert "Developers already answered these questions" in text_of(form)
    assert re.findall(r'name="questions"[^>]*readonly', form.text) != []
    other_questions = ["Which payment integrations?", "", "", "", ""]
    asked = await grace.post(f"/projects/{project_id}/edit", project_form(questions=other_questions))
    assert asked.status_code == 409
    assert "Developers already answered these screening questions" in text_of(asked)
    kept = await grace.post(f"/projects/{project_id}/edit", project_form(title="Stripe checkout and refunds"))
    assert kept.status_code == 303


# ---------------------------------------------------------------------------
# Browsing and the dashboard
# ---------------------------------------------------------------------------


async def test_browse_filters_and_pages(pages: Pages) -> None:
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    visitor = pages.browser()
    empty = await visitor.get("/projects")
    assert empty.status_code == 200
    assert "No open projects yet" in text_of(empty)
    assert 'href="/projects/new"' in empty.text

    await post_project(
        grace, title="Django payments back-end", category="web-backend", skills="Python", questions=[]
    )
    await post_project(
        grace,
        title="iOS app for a bakery",
        category="mobile-ios",
        skills="Swift",
        budget_type="hourly",
        budget_min="50",
        budget_max="90",
        questions=[],
    )
    await post_project(
        grace,
        title="React dashboard for sales",
        category="web-frontend",
        skills="React, Python",
        questions=[],
    )
    await post_project(grace, title="A draft nobody sees", action="draft")

    everything = text_of(await listed(visitor, "/projects", "3 open projects"))
    assert "A draft nobody sees" not in everything
    for title in ("Django payments back-end", "iOS app for a bakery", "React dashboard for sales"):
        assert title in everything
    assert "No proposals yet" in everything
    assert "Posted just now" in everything
    assert "Back-end & APIs" in everything

    def titles(page: httpx.Response) -> list[str]:
        return re.findall(r'<a class="card-link" href="/projects/[0-9a-f-]{36}">([^<]+)</a>', page.text)

    web = await visitor.get("/projects?category=web")
    assert titles(web) == ["React dashboard for sales", "Django payments back-end"]
    assert "2 open projects match your filters" in text_of(web)
    assert 'value="web" checked' in web.text
    assert titles(await visitor.get("/projects?category=web-backend&category=mobile-ios")) == [
        "iOS app for a bakery",
        "Django payments back-end",
    ]
    assert titles(await visitor.get("/projects?budget_type=hourly")) == ["iOS app for a bakery"]
    assert titles(await visitor.get("/projects?skills=python")) == [
        "React dashboard for sales",
        "Django payments back-end",
    ]
    assert titles(await visitor.get("/projects?skills=Python,+React&category=web")) == [
        "React dashboard for sales"
    ]
    assert titles(await visitor.get("/projects?skill=python&skill=react")) == ["React dashboard for sales"]
    unknown = await visitor.get("/projects?skills=Cobol-9000")
    assert unknown.status_code == 400
    assert "Unknown skill: cobol-9000" in text_of(unknown)
    none = await visitor.get("/projects?category=security")
    assert "No open projects match these filters" in text_of(none)
    assert "Post a project" in text_of(none)
    assert "Clear filters" in text_of(none)

    first = await visitor.get("/projects?limit=2")
    assert titles(first) == ["React dashboard for sales", "iOS app for a bakery"]
    assert "showing 1\u20132" in text_of(first)
    next_link = html.unescape(re.search(r'href="([^"]+)" rel="next"', first.text).group(1))  # type: ignore[union-attr]
    second = await visitor.get(next_link)
    assert titles(second) == ["Django payments back-end"]
    assert "showing 3\u20133" in text_of(second)
    assert 'rel="next"' not in second.text
    assert "First page" in text_of(second)
    filtered = await visitor.get("/projects?category=web&limit=1")
    link = html.unescape(re.search(r'href="([^"]+)" rel="next"', filtered.text).group(1))  # type: ignore[union-attr]
    assert "category=web" in link
    assert titles(await visitor.get(link)) == ["Django payments back-end"]
    broken = await visitor.get("/projects?cursor=not-a-cursor")
    assert broken.status_code == 400
    assert "This cursor is not valid" in text_of(broken)


async def test_search_box_facets_and_sort(pages: Pages) -> None:
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    visitor = pages.browser()
    await post_project(
        grace,
        title="Stripe checkout for a coffee shop",
        category="web-backend",
        skills="Python, Django",
        budget_min="500",
        budget_max="900",
        questions=[],
    )
    await post_project(
        grace,
        title="Payment webhooks in Go",
        description="Receive Stripe webhooks and keep orders in step.",
        category="web-backend",
        skills="Go, PostgreSQL",
        budget_min="2000",
        budget_max="4000",
        questions=[],
    )
    await post_project(
        grace,
        title="Android app for a gym",
        description="Members book classes and pay for them in the app.",
        category="mobile-android",
        skills="Kotlin",
        questions=[],
    )
    await listed(visitor, "/projects", "3 open projects")

    def titles(page: httpx.Response) -> list[str]:
        return re.findall(r'<a class="card-link" href="/projects/[0-9a-f-]{36}">([^<]+)</a>', page.text)

    found = await visitor.get("/projects?q=stripe")
    assert found.status_code == 200
    # Best match first: the title says "Stripe"; the other only mentions it in the description.
    assert titles(found) == ["Stripe checkout for a coffee shop", "Payment webhooks in Go"]
    assert "2 open projects match your search" in text_of(found)
    assert 'value="stripe"' in found.text
    assert '<option value="" selected>Best match</option>' in found.text

    # Skill facets count the matching projects; ticking one narrows the search.
    facet = re.compile(
        r'name="skill" value="([a-z0-9-]+)"[^>]*>\s*<span class="facet-name">[^<]+</span>\s*'
        r'<span class="facet-count">(\d+)'
    )
    facets = dict(facet.findall(found.text))
    assert facets == {"django": "1", "python": "1", "go": "1", "postgresql": "1"}
    narrowed = await visitor.get("/projects?q=stripe&skill=go")
    assert titles(narrowed) == ["Payment webhooks in Go"]
    assert 'name="skill" value="go" checked' in narrowed.text
    assert "Clear all" in text_of(narrowed)

    cheapest = await visitor.get("/projects?sort=price_asc")
    assert titles(cheapest)[0] == "Stripe checkout for a coffee shop"
    dearest = await visitor.get("/projects?sort=price_desc")
    assert titles(dearest)[0] == "Payment webhooks in Go"
    assert "Best match" not in dearest.text  # no search: newest is the default

    nothing = await visitor.get("/projects?q=blockchain+oracle")
    assert nothing.status_code == 200
    assert "No open projects match “blockchain oracle”" in text_of(nothing)
    assert "Clear search and filters" in text_of(nothing)


async def test_the_dashboard_shows_each_role_its_sections(pages: Pages) -> None:
    assert (await pages.browser().get("/dashboard", follow=False)).headers["location"].startswith("/login")
    grace, _ = await person(pages, "grace@example.com", "Grace Hopper", "client")
    ada, _ = await person(pages, "ada@example.com", "Ada Lovelace", "developer")
    both, _ = await person(pages, "sam@example.com", "Sam Both", "client", "developer")

    client_view = await grace.get("/dashboard")
    assert client_view.status_code == 200
    assert 'data-section="client"' in client_view.text
    assert 'data-section="developer"' not in client_view.text
    assert "You have not posted a project yet" in text_of(client_view)
    dev_view = await ada.get("/dashboard")
    assert 'data-section="developer"' in dev_view.text
    assert 'data-section="client"' not in dev_view.text
    assert "No proposals yet" in text_of(dev_view)
    both_view = await both.get("/dashboard")
    assert 'data-section="client"' in both_view.text
    assert 'data-section="developer"' in both_view.text
    assert 'href="/dashboard"' in both_view.text  # the account menu links it

    project_id = await post_project(grace, questions=[])
    draft = await post_project(grace, title="Draft for later", action="draft")
    await bid(ada, project_id, answer_1="")
    await bid(both, project_id, answer_1="", amount="1500")
    text = text_of(await grace.get("/dashboard"))
    assert "Open for proposals 1" in text
    assert "2 proposals" in text
    assert "Review" in text
    assert "Drafts 1" in text
    assert "Draft for later" in text
    assert "Finish & publish" in text
    dev_text = text_of(await ada.get("/dashboard"))
    assert "Active proposals 1" in dev_text
    assert "$2,400" in dev_text
    assert 'data-status="submitted"' in (await ada.get("/dashboard")).text
    assert draft not in (await ada.get("/dashboard")).text
