"""The contract and dispute pages, driven like a browser without JavaScript: the client funds at
the checkout (a declined card stays on it with the reason), the developer submits with a file,
the client asks for changes and approves; milestones proposed and accepted through the forms;
a dispute opened, answered with evidence and split by an administrator."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_api import png_bytes
from tests.integration.test_accounts_security import Browser, make_admin
from tests.integration.test_milestones import Deal, hire
from tests.marketplace_helpers import App, Apps, open_market


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


class Party:
    """A signed-in browser on a contract's pages."""

    def __init__(self, browser: Browser, deal: Deal) -> None:
        self.browser, self.deal = browser, deal
        self.base = f"/contracts/{deal.contract['id']}"

    async def page(self, url: str = "") -> Any:
        response = await self.browser.request("GET", url or self.base, headers={"Accept": "text/html"})
        assert response.status_code == 200, response.text
        return response

    async def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return await self.browser.request(
            "POST", url, data={"csrf_token": self.browser.csrf(), **(data or {})}, **kwargs
        )

    def milestone(self, index: int) -> str:
        return f"{self.base}/milestones/{self.deal.milestones[index]['id']}"


async def parties(app: App) -> tuple[Deal, Party, Party]:
    deal = await hire(app)
    owner = Party(await Browser.signed_in(app, deal.owner.email), deal)
    dev = Party(await Browser.signed_in(app, deal.dev.email), deal)
    return deal, owner, dev


def text_of(response: Any) -> str:
    return html.unescape(response.text)


async def test_fund_submit_with_a_file_change_and_approve_through_the_pages(app: App) -> None:
    deal, owner, dev = await parties(app)
    page = text_of(await owner.page())
    assert "Fund $400" in page
    assert "Fund $400" not in text_of(await dev.page())  # the developer cannot fund
    checkout = text_of(await owner.page(f"{owner.milestone(0)}/checkout"))
    assert "Total today" in checkout
    assert "4242 4242 4242 4242" in checkout
    assert (await dev.browser.request("GET", f"{owner.milestone(0)}/checkout")).status_code == 404
    declined = await owner.post(f"{owner.milestone(0)}/checkout", {"card_number": "4000 0000 0000 0002"})
    assert declined.status_code == 402
    assert "declined" in text_of(declined)
    funded = await owner.post(f"{owner.milestone(0)}/checkout", {"card_number": "4242 4242 4242 4242"})
    assert funded.status_code == 303
    assert funded.headers["location"].startswith(f"{owner.base}?done=funded")
    page = text_of(await owner.page(funded.headers["location"]))
    assert "held in escrow" in page
    assert "funded “Design”" in page
    # the developer submits with a file; a bad file keeps the milestone funded
    bad = await dev.post(
        f"{dev.milestone(0)}/submit",
        {"note": "Done"},
        files={"files": ("notes.png", b"not an image", "image/png")},
    )
    assert bad.status_code == 400
    assert (await deal.milestone())["status"] == "funded"
    submitted = await dev.post(
        f"{dev.milestone(0)}/submit",
        {"note": "Designs attached."},
        files={"files": ("design.png", png_bytes(), "image/png")},
    )
    assert submitted.status_code == 303, submitted.text
    page = text_of(await owner.page())
    assert "Designs attached." in page
    assert "design.png" in page
    assert "Approve &amp; pay" in (await owner.page()).text
    # empty change request: the reason is asked for, on the milestone
    empty = await owner.post(f"{owner.milestone(0)}/request-changes", {"message": " "})
    assert empty.status_code == 400
    assert "Say what should change." in text_of(empty)
    assert (
        await owner.post(f"{owner.milestone(0)}/request-changes", {"message": "Bigger logo"})
    ).status_code == 303
    assert (await dev.post(f"{dev.milestone(0)}/submit", {"note": "Bigger now."})).status_code == 303
    # a partial release, then approval of the rest
    too_much = await owner.post(f"{owner.milestone(0)}/release", {"amount": "500"})
    assert too_much.status_code == 409
    assert (await owner.post(f"{owner.milestone(0)}/release", {"amount": "100"})).status_code == 303
    approved = await owner.post(f"{owner.milestone(0)}/approve")
    assert approved.headers["location"].startswith(f"{owner.base}?done=approved")
    milestone = await deal.milestone()
    assert milestone["status"] == "approved"
    assert milestone["released"] == 40_000
    # someone else's contract is a 404, on every form
    stranger = Party(await Browser.signed_in(app, (await hire(app)).owner.email), deal)
    assert (await stranger.browser.request("GET", owner.base)).status_code == 404
    assert (await stranger.post(f"{owner.milestone(1)}/cancel")).status_code == 404


async def test_milestones_proposed_and_accepted_and_the_contract_completed(app: App) -> None:
    deal, owner, dev = await parties(app)
    bad = await dev.post(f"{dev.base}/milestones", {"title": "Extra", "amount": "abc"})
    assert bad.status_code == 400
    assert "Enter an amount" in text_of(bad)
    proposed = await dev.post(
        f"{dev.base}/milestones", {"title": "Extra work", "amount": "150", "due_days": "9"}
    )
    assert proposed.status_code == 303
    page = text_of(await owner.page())
    assert "Accept milestone" in page
    assert "Accept milestone" not in text_of(await dev.page())
    contract = await deal.app.client.get(f"/api/v1/contracts/{deal.contract['id']}", headers=deal.owner.auth)
    extra = contract.json()["milestones"][2]["id"]
    assert (await owner.post(f"{owner.base}/milestones/{extra}/accept")).status_code == 303
    contract = await deal.app.client.get(f"/api/v1/contracts/{deal.contract['id']}", headers=deal.owner.auth)
    assert contract.json()["total"] == 115_000
    # cancel everything not yet funded; then the contract can be cancelled, not completed
    not_yet = await owner.post(f"{owner.base}/complete")
    assert not_yet.status_code == 409
    ended = await owner.post(f"{owner.base}/cancel")
    assert ended.status_code == 303
    page = text_of(await owner.page(ended.headers["location"]))
    assert "The contract is cancelled." in page
    assert "Propose another milestone" not in page


async def test_a_dispute_through_the_pages_split_60_40_by_an_admin(app: App) -> None:
    deal, owner, dev = await parties(app)
    await deal.fund(0)
    too_short = await owner.post(f"{owner.milestone(0)}/dispute", {"reason": "bad"})
    assert too_short.status_code == 400
    assert "10 characters" in text_of(too_short)
    opened = await owner.post(f"{owner.milestone(0)}/dispute", {"reason": "Nothing was delivered on time."})
    assert opened.status_code == 303
    url = opened.headers["location"].split("?")[0]
    page = text_of(await owner.page(opened.headers["location"]))
    assert "Nothing was delivered on time." in page
    assert "to respond" in page
    assert "Resolve dispute" not in page
    answer = await dev.post(
        f"{url}/evidence",
        {"message": "I delivered; see the file."},
        files={"files": ("proof.png", png_bytes(), "image/png")},
    )
    assert answer.status_code == 303
    # the parties cannot resolve; a stranger sees nothing
    assert (
        await owner.post(f"{url}/resolve", {"developer_amount": "400", "note": "Mine"})
    ).status_code == 404
    admin_person = await make_admin(app, "root@example.com")
    admin = Party(await Browser.signed_in(app, admin_person.email), deal)
    listing = text_of(await admin.page("/admin/disputes"))
    assert "Design" in listing
    assert (await owner.browser.request("GET", "/admin/disputes")).status_code == 403
    seen = text_of(await admin.page(url))
    assert "proof.png" in seen
    assert "Resolve dispute" in seen
    wrong = await admin.post(f"{url}/resolve", {"developer_amount": "500", "note": "Too much"})
    assert wrong.status_code == 400
    assert "at most 400" in text_of(wrong)
    done = await admin.post(f"{url}/resolve", {"developer_amount": "240", "note": "Part was delivered."})
    assert done.status_code == 303
    page = text_of(await owner.page(url))
    assert "$240" in page
    assert "$160" in page
    assert "Part was delivered." in page
    milestone = await deal.milestone()
    assert (milestone["status"], milestone["released"], milestone["refunded"]) == ("approved", 24_000, 16_000)
    timeline = text_of(await dev.page())
    assert (
        "The dispute on “Design” was settled: $240 to the developer, $160 refunded to the client." in timeline
    )
