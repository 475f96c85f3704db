"""Blind reviews in real Chromium: on a completed contract the client reviews the developer (a
missing star rating is pointed out next to its field first) and sees that the review waits; the
developer's page does not show it; the developer reviews the client; now both pages show both
reviews, and the developer replies. Screenshots land in test-results/screenshots/<test name>/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mercato import create_app
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database
from tests.e2e.conftest import free_port
from tests.e2e.test_accounts_browser import DESKTOP, PHONE, SiteServer, new_tab
from tests.e2e.test_money_browser import hire, log_in
from tests.integration.test_accounts_api import register
from tests.marketplace_helpers import API

pytestmark = pytest.mark.browser


@pytest.fixture
async def market(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[tuple[SiteServer, Site]]:
    port = free_port()
    settings = make_settings(
        site={"base_url": f"http://127.0.0.1:{port}", "name": "Mercato Dev"},
        accounts={"require_verified_email": False, "registrations_per_hour": 1000},
    )
    settings = _with_database(settings, await databases.create_migrated(settings))
    site = Site(settings)
    async with SiteServer(create_app(site=site), port) as server:
        yield server, site
    await _delete_streams(settings.events.nats_url, {settings.events.stream})


async def test_both_parties_review_and_the_reviews_appear_only_when_both_are_in(
    browser: Any, market: tuple[SiteServer, Site], screenshots: Path
) -> None:
    server, _ = market
    async with httpx.AsyncClient(base_url=server.url) as http:
        grace = await register(http, "grace@example.com", name="Grace Hopper", roles=("client",))
        linus = await register(http, "linus@example.com", name="Linus Dev", roles=("developer",))
        contract_id = await hire(http, grace, linus, "Nightly invoice export", [("Export job", 50_000)])
        contract = (await http.get(f"{API}/contracts/{contract_id}", headers=grace.auth)).json()
        milestone_id = contract["milestones"][0]["id"]
        for url, who, body in [
            (f"{API}/milestones/{milestone_id}/fund", grace, {"payment_method": "4242424242424242"}),
            (f"{API}/milestones/{milestone_id}/approve", grace, None),
            (f"{API}/contracts/{contract_id}/complete", grace, None),
        ]:
            response = await http.post(url, headers=who.auth, json=body)
            assert response.status_code == 200, response.text

    client = await new_tab(browser, screenshots, "1-client", DESKTOP)
    dev = await new_tab(browser, screenshots, "2-developer", PHONE, is_mobile=True, has_touch=True)
    await log_in(client, server.url, "grace@example.com")
    await log_in(dev, server.url, "linus@example.com")
    contract_url = f"{server.url}/contracts/{contract_id}"

    # -- the client reviews; forgetting the overall stars is pointed out next to them -----------
    page = client.page
    await page.goto(contract_url)
    reviews = page.locator("#reviews")
    await reviews.get_by_role("heading", name="Reviews").wait_for()
    await client.shot("review-form")
    for legend in ("Quality of work", "Communication", "Timeliness"):
        await reviews.get_by_role("group", name=legend).get_by_label("5").check()
    await reviews.get_by_label("Your review").fill("Shipped the export a day early, with tests and a README.")
    await reviews.get_by_role("button", name="Publish review").click()
    await reviews.get_by_text("Choose from 1 to 5 stars.").wait_for()
    assert await reviews.get_by_label("Your review").input_value() == (
        "Shipped the export a day early, with tests and a README."
    )
    await client.shot("review-form-error")
    await reviews.get_by_role("group", name="Overall rating").get_by_label("5 stars").check()
    for legend in ("Quality of work", "Communication", "Timeliness"):
        await reviews.get_by_role("group", name=legend).get_by_label("5").check()
    await reviews.get_by_role("button", name="Publish review").click()
    await page.wait_for_url("**reviews=reviewed**")
    waiting = page.locator("[data-review-state=waiting]")
    await waiting.wait_for()
    assert "Your review is in; it shows when Linus Dev has reviewed or on" in await waiting.inner_text()
    await client.shot("review-waiting")

    # -- the developer's page does not show it -------------------------------------------------
    dpage = dev.page
    await dpage.goto(contract_url)
    dreviews = dpage.locator("#reviews")
    await dreviews.get_by_role("button", name="Publish review").wait_for()
    assert "Shipped the export" not in await dpage.content()
    await dev.shot("developer-before-reviewing")
    await dreviews.get_by_role("group", name="Overall rating").get_by_label("4 stars").check()
    for legend in ("Clarity of requirements", "Communication", "Payment promptness"):
        await dreviews.get_by_role("group", name=legend).get_by_label("4").check()
    await dreviews.get_by_label("Your review").fill("Clear brief and quick answers; paid on approval.")
    await dreviews.get_by_role("button", name="Publish review").click()
    await dpage.wait_for_url("**reviews=reviewed**")

    # -- both in: both pages show both reviews -------------------------------------------------
    await dpage.locator("[data-review-state=published]").wait_for()
    dtext = await dreviews.inner_text()
    assert "Shipped the export a day early" in dtext
    assert "Clear brief and quick answers" in dtext
    await dev.shot("developer-both-published")
    await page.goto(contract_url)
    text = await reviews.inner_text()
    assert "Shipped the export a day early" in text
    assert "Clear brief and quick answers" in text
    assert await reviews.get_by_role("link", name="Report").count() == 1  # the review of you, not yours
    await client.shot("client-both-published")

    # -- the developer replies once, and it shows on the public profile ------------------------
    await dreviews.get_by_text("Reply publicly").click()
    await dreviews.get_by_label("Your reply").fill("Thank you, Grace!")
    await dreviews.get_by_role("button", name="Publish reply").click()
    await dpage.wait_for_url("**reviews=replied**")
    assert await dreviews.get_by_text("Reply publicly").count() == 0
    await page.goto(f"{server.url}/users/{linus.id}")
    profile = page.locator("#reviews")
    assert "Shipped the export a day early" in await profile.inner_text()
    assert "Thank you, Grace!" in await profile.inner_text()
    await client.shot("developer-profile")
