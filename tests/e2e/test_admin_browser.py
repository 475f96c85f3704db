"""Administration in real Chromium: someone reports a service from its page; the admin sees it
under "needs attention" on /admin and hides it, and the service is gone for everyone else;
then the admin resolves a dispute reached from the dashboard.
Screenshots of every step land in test-results/screenshots/<test name>/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from mercato.core.accounts.services import AccountService
from mercato.core.site import Site
from tests.e2e.test_accounts_browser import DESKTOP, SiteServer, new_tab
from tests.e2e.test_money_browser import hire, log_in, market  # noqa: F401 - market is the fixture
from tests.integration.test_accounts_api import PASSWORD, register
from tests.integration.test_listings import service_body
from tests.marketplace_helpers import API

pytestmark = pytest.mark.browser

CARD = "4242424242424242"


async def test_admin_hides_a_reported_service_and_resolves_a_dispute_from_the_dashboard(
    browser: Any,
    market: tuple[SiteServer, Site],  # noqa: F811 - the fixture
    screenshots: Path,
) -> None:
    server, site = market
    async with httpx.AsyncClient(base_url=server.url) as http:
        ada = await register(http, "ada@example.com", name="Ada Client", roles=("client",))
        linus = await register(http, "linus@example.com", name="Linus Dev", roles=("developer",))
        listed = await http.post(
            f"{API}/services",
            headers=linus.auth,
            json=service_body(title="I will move your payments off the platform", publish=True),
        )
        assert listed.status_code == 201, listed.text
        service_id = listed.json()["id"]
        contract_id = await hire(http, ada, linus, "Nightly invoice export", [("Export job", 50_000)])
        contract = (await http.get(f"{API}/contracts/{contract_id}", headers=ada.auth)).json()
        milestone_id = contract["milestones"][0]["id"]
        funded = await http.post(
            f"{API}/milestones/{milestone_id}/fund", headers=ada.auth, json={"payment_method": CARD}
        )
        assert funded.status_code == 200, funded.text
        disputed = await http.post(
            f"{API}/milestones/{milestone_id}/dispute",
            headers=ada.auth,
            json={"reason": "The export misses half of the invoices."},
        )
        assert disputed.status_code == 201, disputed.text
    async with site.db.transaction() as session:
        await AccountService(site).register(
            session,
            email="root@example.com",
            display_name="Site Admin",
            roles=["client"],
            password=PASSWORD,
            method="test",
            verified=True,
            admin=True,
        )

    # -- Ada reports the service from its page ------------------------------------------------
    reporter = await new_tab(browser, screenshots, "1-reporter", DESKTOP)
    await log_in(reporter, server.url, "ada@example.com")
    page = reporter.page
    await page.goto(f"{server.url}/services/{service_id}")
    await page.get_by_role("link", name="Report this service").click()
    await page.get_by_label("Reason").select_option("scam")
    await page.get_by_label("Details").fill("Asks to be paid by wire transfer instead.")
    await reporter.shot("report-form")
    await page.get_by_role("button", name="Send report").click()
    await page.get_by_role("heading", name="Thank you").wait_for()
    await reporter.shot("reported")

    # -- the admin sees it on the dashboard and hides it --------------------------------------------
    admin = await new_tab(browser, screenshots, "2-admin", DESKTOP)
    await log_in(admin, server.url, "root@example.com")
    await admin.page.goto(f"{server.url}/admin")
    attention = admin.page.locator("section", has=admin.page.get_by_role("heading", name="Needs attention"))
    report = attention.locator("[data-report]", has_text="I will move your payments off the platform")
    await report.get_by_text("Asks to be paid by wire transfer instead.").wait_for()
    assert await admin.page.locator("[data-kpi=open-reports]").inner_text() == "1"
    assert await admin.page.locator("svg.admin-chart").count() >= 2
    await admin.shot("dashboard")
    await report.get_by_label("Note").fill("Off-platform payment")
    await report.get_by_role("button", name="Hide", exact=True).click()
    await admin.page.wait_for_url(re.compile(r"/admin\?done=hide$"))
    await admin.page.get_by_text("No open reports.").wait_for()
    await admin.shot("hidden")
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get(f"/services/{service_id}")).status_code == 404
        assert (await http.get(f"{API}/services/{service_id}")).status_code == 404

    # -- and resolves the dispute, reached from the dashboard ------------------------------------------
    await admin.page.get_by_role("link", name="1 open dispute").click()
    await admin.page.wait_for_url(re.compile(r"/admin/disputes$"))
    await admin.page.get_by_role("link", name="Export job").click()
    await admin.page.get_by_label("Developer's share (USD)").fill("300")
    await admin.page.get_by_label("Reasons").fill("Half the invoices were drafts the brief excluded.")
    await admin.page.get_by_role("button", name="Resolve dispute").click()
    await admin.page.wait_for_url(re.compile(r"\?done=resolved"))
    await admin.shot("resolved")
    await admin.page.goto(f"{server.url}/admin/audit")
    await admin.page.get_by_role("cell", name="dispute.resolve").wait_for()
    await admin.page.get_by_role("cell", name="report.hide").wait_for()
    await admin.shot("audit")
    for tab in (reporter, admin):
        assert tab.errors == [], tab.errors
