"""Projects in real Chromium: a client posts a project through the form, two developers (each in
their own browser context) bid on it, the client compares the proposals, shortlists one and
hires it, and the contract page shows the agreed milestones. Also the browse and project pages
on a phone. Screenshots of every step land in test-results/screenshots/<test name>/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mercato import create_app
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database
from tests.e2e.conftest import free_port
from tests.e2e.test_accounts_browser import DESKTOP, PHONE, SiteServer, Tab, new_tab, sign_up

pytestmark = pytest.mark.browser

FITS = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
async def market(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[SiteServer]:
    port = free_port()
    settings = make_settings(
        site={"base_url": f"http://127.0.0.1:{port}", "name": "Mercato Dev"},
        accounts={"require_verified_email": False, "registrations_per_hour": 1000},
    )
    settings = _with_database(settings, await databases.create_migrated(settings))
    async with SiteServer(create_app(site=Site(settings)), port) as server:
        yield server
    await _delete_streams(settings.events.nats_url, {settings.events.stream})


async def browse_until(tab: Tab, url: str, cards: int) -> None:
    """Open a browse page, reloading until it lists ``cards`` projects: the search index
    follows commits through events, a moment behind."""
    for _ in range(50):
        await tab.page.goto(url)
        if await tab.page.locator(".project-card").count() == cards:
            return
        await tab.page.wait_for_timeout(100)
    raise AssertionError(f"{url} never listed {cards} projects")


async def add_skills(tab: Tab, *skills: str) -> None:
    page = tab.page
    await page.goto(page.url.split("/settings")[0] + "/settings/profile")
    picker = page.locator("#skills")
    for skill in skills:
        await picker.fill(skill)
        await picker.press("Enter")
    await page.get_by_label("Headline").fill("Payments engineer: Python, Stripe, PostgreSQL")
    await page.get_by_role("button", name="Save profile").click()
    await page.wait_for_url(re.compile(r"saved=1$"))


async def send_proposal(
    tab: Tab,
    url: str,
    *,
    amount: str,
    days: str,
    answer: str,
    milestones: list[tuple[str, str]] | None = None,
) -> None:
    page = tab.page
    await page.goto(url)
    await page.get_by_label("Cover letter").fill(
        "I have shipped **Stripe checkouts** for three Django shops.\n\n- webhooks and retries\n- refunds"
    )
    await page.get_by_label("Your total price").fill(amount)
    await page.get_by_label("Days to deliver").fill(days)
    if milestones:
        for number, (title, part) in enumerate(milestones, start=1):
            await page.locator("[data-add-milestone]").click()
            await page.locator(f"#milestone-title-{number}").fill(title)
            await page.locator(f"#milestone-amount-{number}").fill(part)
        assert await page.locator("[data-milestone-sum]").inner_text() == (
            "The milestones add up to your total price."
        )
    await page.get_by_label("Which payment integrations have you shipped?").fill(answer)
    await page.locator("#bid").scroll_into_view_if_needed()
    await tab.shot("bid-form")
    await page.get_by_role("button", name="Send proposal").click()
    await page.wait_for_url(re.compile(r"\?done=bid#my-proposal$"))
    assert await page.get_by_text("Your proposal is sent.").is_visible()
    await tab.shot("bid-sent")


async def test_a_client_posts_compares_shortlists_and_hires(
    browser: Any,
    market: SiteServer,
    screenshots: Path,
) -> None:
    # -- the client posts a project ---------------------------------------------------------------
    client = await new_tab(browser, screenshots, "1-client", DESKTOP)
    await sign_up(client, market, name="Grace Hopper", email="grace@example.com", developer=False)
    page = client.page
    await page.goto(market.url + "/")
    await page.get_by_role("link", name="Post a project").first.click()
    await page.wait_for_url(market.url + "/projects/new")
    await page.get_by_label("Title").fill("Stripe checkout for a Django shop")
    await page.get_by_label("Description").fill(
        "We sell **coffee beans** online and need:\n\n- Stripe checkout\n- refunds\n- webhooks with retries"
    )
    await page.get_by_label("Category").select_option("web-backend")
    skills = page.locator("#skills")
    for skill in ("python", "django"):
        await skills.fill(skill)
        await skills.press("Enter")
    assert await page.locator(".skill-chips .chip-label").all_inner_texts() == ["Python", "Django"]
    await page.get_by_label("From").fill("1000")
    await page.get_by_label("To", exact=True).fill("3000")
    await page.get_by_label("How long will it take?").select_option("1_4_weeks")
    await page.get_by_label("Expert").check()
    await page.get_by_label("Question 1").fill("Which payment integrations have you shipped?")
    assert not await page.get_by_label("Question 2").is_visible()
    await page.get_by_role("button", name="+ Add a question").click()
    await page.get_by_label("Question 2").fill("When could you start?")
    await page.get_by_label("Question 2").fill("")  # changed their mind: empty questions are dropped
    await client.shot("post-form")
    await page.get_by_label("To", exact=True).fill("")
    await page.get_by_role("button", name="Publish project").click()
    assert await page.locator("#budget_max-error").inner_text() == "Enter the most you would pay."
    assert await page.get_by_label("Title").input_value() == "Stripe checkout for a Django shop"
    await page.locator("#budget_max").scroll_into_view_if_needed()
    await client.shot("post-form-error", full_page=False)
    client.errors.clear()  # the 400 answer is logged as a failed resource
    await page.get_by_label("To", exact=True).fill("3000")
    await page.get_by_role("button", name="Publish project").click()
    await page.wait_for_url(re.compile(r"/projects/[0-9a-f-]{36}\?done=posted$"))
    project_url = page.url.split("?")[0]
    assert await page.get_by_role("heading", name="Stripe checkout for a Django shop").is_visible()
    assert await page.locator(".project-facts-budget").inner_text() == "$1,000 \u2013 $3,000"
    await client.shot("project-posted")

    # -- two developers bid, each in their own browser --------------------------------------------
    ada = await new_tab(browser, screenshots, "2-ada", DESKTOP)
    await sign_up(ada, market, name="Ada Lovelace", email="ada@example.com", developer=True)
    await add_skills(ada, "Python", "PostgreSQL")
    await browse_until(ada, market.url + "/projects", 1)
    await ada.shot("browse")
    await ada.page.get_by_role("link", name="Stripe checkout for a Django shop").click()
    await ada.page.wait_for_url(project_url)
    await send_proposal(
        ada,
        project_url,
        amount="2400",
        days="14",
        answer="Stripe, Adyen and Mollie.",
        milestones=[("Checkout and schema", "1400"), ("Webhooks and refunds", "1000")],
    )

    linus = await new_tab(browser, screenshots, "3-linus", DESKTOP)
    await sign_up(linus, market, name="Linus Coder", email="linus@example.com", developer=True)
    await send_proposal(linus, project_url, amount="1800", days="30", answer="Stripe, twice.")

    # -- the client compares, shortlists and hires ---------------------------------------------------
    await page.goto(project_url + "#proposals")
    cards = page.locator(".proposal-card")
    assert await cards.count() == 2
    assert await page.locator(".proposal-name").all_inner_texts() == ["Linus Coder", "Ada Lovelace"]
    await client.shot("compare")
    await (
        page.get_by_role("navigation", name="Sort proposals").get_by_role("link", name="Skill match").click()
    )
    await page.wait_for_url(re.compile(r"sort=skill_match"))
    assert await page.locator(".proposal-name").all_inner_texts() == ["Ada Lovelace", "Linus Coder"]
    ada_card = cards.filter(has_text="Ada Lovelace")
    await ada_card.get_by_text("Cover letter").click()
    assert await ada_card.get_by_text("webhooks and retries").is_visible()
    await ada_card.get_by_text("2 milestones").click()
    await client.shot("compare-details")
    await ada_card.get_by_role("button", name="Shortlist").click()
    await page.wait_for_url(re.compile(r"done=shortlisted"))
    ada_card = page.locator(".proposal-card").filter(has_text="Ada Lovelace")
    assert await ada_card.locator(".status-badge").inner_text() == "Shortlisted"
    await client.shot("shortlisted")
    await ada_card.get_by_text("Hire…").click()
    await ada_card.get_by_label(re.compile("Hire Ada Lovelace for")).check()
    await ada_card.scroll_into_view_if_needed()
    await client.shot("hire-confirm", full_page=False)
    await ada_card.get_by_role("button", name="Hire Ada Lovelace").click()
    await page.wait_for_url(re.compile(r"/contracts/[0-9a-f-]{36}\?hired=1$"))
    assert await page.get_by_text("You hired Ada Lovelace.").is_visible()
    rows = page.locator(".milestone-card")
    assert await rows.count() == 2
    assert "Webhooks and refunds" in await rows.nth(1).inner_text()
    await client.shot("contract")
    await page.goto(market.url + "/dashboard")
    await client.shot("dashboard")

    # -- the developers see the outcome -------------------------------------------------------------
    await ada.page.goto(project_url)
    assert await ada.page.get_by_text("You are hired!").is_visible()
    await ada.page.get_by_role("link", name="Open the contract").click()
    await ada.page.wait_for_url(re.compile(r"/contracts/"))
    await ada.shot("contract")
    await ada.page.goto(market.url + "/dashboard")
    await ada.shot("dashboard")
    await linus.page.goto(project_url)
    assert await linus.page.locator(".my-proposal .status-badge").inner_text() == "Declined"
    await linus.shot("declined")

    # -- the pages on a phone (a second project keeps the list from being empty) ----------------
    await client.page.goto(market.url + "/projects/new")
    await client.page.get_by_label("Title").fill("React dashboard for our sales team")
    await client.page.get_by_label("Description").fill(
        "A sales dashboard in **React** on top of our REST API:\n\n- charts\n- CSV export\n- dark mode"
    )
    await client.page.get_by_label("Category").select_option("web-frontend")
    await client.page.locator("#skills").fill("React")
    await client.page.locator("#skills").press("Enter")
    await client.page.get_by_label("Hourly rate").check()
    await client.page.get_by_label("From").fill("45")
    await client.page.get_by_label("To", exact=True).fill("70")
    await client.page.get_by_label("How long will it take?").select_option("1_3_months")
    await client.page.get_by_role("button", name="Publish project").click()
    await client.page.wait_for_url(re.compile(r"done=posted$"))
    second_url = client.page.url.split("?")[0]
    await client.shot("second-project-owner")

    phone = await new_tab(browser, screenshots, "4-phone", PHONE)
    await browse_until(phone, market.url + "/projects", 1)
    await phone.shot("browse")
    assert await phone.page.evaluate(FITS)
    await phone.page.locator(".browse-filters-toggle").click()
    await phone.page.get_by_text("Web development", exact=True).click()
    await phone.shot("browse-filters")
    await phone.page.goto(second_url)
    await phone.shot("project")
    assert await phone.page.evaluate(FITS)
    phone_dev = await new_tab(browser, screenshots, "5-phone-dev-dark", PHONE, color_scheme="dark")
    await sign_up(phone_dev, market, name="Margaret Hamilton", email="margaret@example.com", developer=True)
    await phone_dev.page.goto(second_url)
    assert await phone_dev.page.get_by_label("Your hourly rate").is_visible()
    await phone_dev.shot("project-bid-form")
    assert await phone_dev.page.evaluate(FITS)
    await phone_dev.page.goto(project_url)
    await phone_dev.shot("hired-project")
    for tab in (client, ada, linus, phone, phone_dev):
        assert tab.errors == [], tab.prefix
