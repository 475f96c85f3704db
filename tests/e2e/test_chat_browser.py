"""Chat and notifications live in real Chromium: a client and a developer (two browser contexts)
talk on a contract's conversation; the developer sees the client typing, the client sees
"Seen" once the developer read it, and the developer's notification bell counts up without a
reload when the client funds a milestone. Screenshots land in test-results/screenshots/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mercato import create_app
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database
from tests.e2e.conftest import free_port
from tests.e2e.test_accounts_browser import DESKTOP, SiteServer, new_tab
from tests.e2e.test_money_browser import hire, log_in
from tests.integration.test_accounts_api import register
from tests.marketplace_helpers import API

pytestmark = pytest.mark.browser


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


async def test_two_people_chat_live_and_the_bell_counts_up(
    browser: Any, market: SiteServer, screenshots: Path
) -> None:
    async with httpx.AsyncClient(base_url=market.url) as http:
        grace = await register(http, "grace@example.com", name="Grace Hopper", roles=("client",))
        linus = await register(http, "linus@example.com", name="Linus Dev", roles=("developer",))
        contract_id = await hire(http, grace, linus, "Live chat project", [("First part", 30_000)])
        client = await new_tab(browser, screenshots, "1-client", DESKTOP)
        dev = await new_tab(browser, screenshots, "2-developer", DESKTOP)
        await log_in(client, market.url, "grace@example.com")
        await log_in(dev, market.url, "linus@example.com")

        # the client opens the conversation from the contract page
        await client.page.goto(f"{market.url}/contracts/{contract_id}")
        await client.page.get_by_role("button", name="Message Linus Dev").click()
        await client.page.wait_for_url(re.compile(r"/messages/[0-9a-f-]{36}$"))
        conversation_url = client.page.url
        await dev.page.goto(conversation_url)
        await dev.page.get_by_text("Say hello to Grace Hopper").wait_for()

        # typing shows on the other side; the message arrives without a reload
        await client.page.get_by_label("Your message").press_sequentially("Hello Linus", delay=30)
        await dev.page.get_by_text("Typing…").wait_for()
        await dev.shot("typing")
        await client.page.get_by_label("Your message").press("Enter")
        await dev.page.locator(".chat-bubble", has_text="Hello Linus").wait_for()
        # the developer has the page open: the client sees it was read
        await client.page.get_by_text("Seen").wait_for()
        await client.shot("seen")
        await dev.page.get_by_label("Your message").fill("Hi Grace, **starting** today.")
        await dev.page.get_by_role("button", name="Send").click()
        await client.page.locator(".chat-bubble strong", has_text="starting").wait_for()
        await client.shot("conversation")

        # the bell counts up on the developer's page when the client funds a milestone
        bell = dev.page.locator("[data-notification-bell] [data-unread]")
        before = int(await bell.inner_text()) if await bell.is_visible() else 0
        contract = (await http.get(f"{API}/contracts/{contract_id}", headers=grace.auth)).json()
        funded = await http.post(
            f"{API}/milestones/{contract['milestones'][0]['id']}/fund",
            headers=grace.auth,
            json={"payment_method": "4242424242424242"},
        )
        assert funded.status_code == 200
        await dev.page.wait_for_function(
            "n => { const b = document.querySelector('[data-notification-bell] [data-unread]');"
            " return b && !b.hidden && parseInt(b.textContent, 10) > n; }",
            arg=before,
        )
        await dev.shot("bell")
        for tab in (client, dev):
            assert tab.errors == [], tab.errors
