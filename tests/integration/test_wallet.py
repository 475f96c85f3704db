"""The wallet end to end with the sandbox gateway: payout methods registered with the gateway,
payouts to them, a receipt for every movement of money, and the theme's wallet pages (driven
like a browser without JavaScript: cookies, CSRF tokens, forms and redirects)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from mercato.core.payments.models import PayoutMethod
from mercato.plugins.sandbox_payments.models import SandboxPayoutAccount
from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_security import Browser
from tests.integration.test_milestones import FAILS, SUCCEEDS, bank_account, hire, paid_developer, payout
from tests.marketplace_helpers import (
    API,
    MARKET_ACCOUNTS,
    App,
    Apps,
    Person,
    assert_problem,
    client,
    open_market,
)

HTML = {"Accept": "text/html"}
RECEIPT_LINK = re.compile(r'href="(/wallet/receipts/[0-9a-f-]{36})"')


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


@pytest.fixture
async def fee_app(apps: Apps) -> App:
    """A site whose clients pay a 5% fee on top of each milestone they fund."""
    settings = await apps.settings(accounts=MARKET_ACCOUNTS, payments={"client_fee_percent": 5.0})
    return await open_market(apps, settings=settings)


def text_of(response: Any) -> str:
    """A page's visible text, tags stripped and spaces collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


async def browser_of(app: App, who: Person) -> Browser:
    return await Browser.signed_in(app, who.email, who.password)


async def page(browser: Browser, url: str) -> Any:
    return await browser.request("GET", url, headers=HTML)


async def submit(browser: Browser, url: str, form: dict[str, str]) -> Any:
    return await browser.request("POST", url, headers=HTML, data={**form, "csrf_token": browser.csrf()})


async def transactions(app: App, who: Person, **params: str) -> list[dict[str, Any]]:
    response = await app.client.get(f"{API}/wallet/transactions", headers=who.auth, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def receipt_of(app: App, who: Person, kind: str) -> str:
    """The receipt URL of ``who``'s newest movement of ``kind``."""
    found = await transactions(app, who, kind=kind)
    assert found, f"no {kind} in the history of {who.email}"
    return str(found[0]["receipt_url"])


# ---------------------------------------------------------------------------
# Payout methods (API)
# ---------------------------------------------------------------------------


async def test_payout_methods_are_added_listed_and_removed_by_their_owner_only(app: App) -> None:
    ada, bob = await client(app), await client(app)
    added = await app.client.post(f"{API}/wallet/payout-methods", headers=ada.auth,
                                  json={"account_number": "0001 2345 6789"})
    assert added.status_code == 201, added.text
    method = added.json()
    assert method["label"] == "Bank account \u2022\u20226789"
    assert method["gateway"] == "sandbox"
    assert "123456789" not in added.text  # the number stays with the gateway

    listed = (await app.client.get(f"{API}/wallet/payout-methods", headers=ada.auth)).json()
    assert [m["id"] for m in listed["items"]] == [method["id"]]
    assert listed["next_cursor"] is None
    assert (await app.client.get(f"{API}/wallet/payout-methods", headers=bob.auth)).json()["items"] == []

    async def stored() -> tuple[str, str]:
        async with app.site.db.reading() as session:
            row = await session.get(PayoutMethod, uuid.UUID(method["id"]))
            assert row is not None
            number = await session.scalar(select(SandboxPayoutAccount.account_number)
                                          .where(SandboxPayoutAccount.token == row.token))
            return row.token, str(number)

    token, number = await app.on_loop(stored)
    assert token.startswith("sb_acct_")
    assert number == SUCCEEDS  # the sandbox, like a processor, keeps the account number

    url = f"{API}/wallet/payout-methods/{method['id']}"
    assert_problem(await app.client.delete(url, headers=bob.auth), 404)
    assert (await app.client.delete(url, headers=ada.auth)).status_code == 204
    assert (await app.client.get(f"{API}/wallet/payout-methods", headers=ada.auth)).json()["items"] == []
    assert_problem(await app.client.delete(url, headers=ada.auth), 404)
    assert_problem(await app.client.delete(url), 401)


async def test_account_numbers_the_gateway_refuses_are_a_400_naming_the_field(app: App) -> None:
    ada = await client(app)
    url = f"{API}/wallet/payout-methods"
    garbled = assert_problem(await app.client.post(url, headers=ada.auth, json={"account_number": "12ab"}),
                             400, field="account_number")
    assert "6 to 17 digits" in garbled["detail"]
    unknown = assert_problem(await app.client.post(url, headers=ada.auth,
                                                   json={"account_number": "000999999999"}), 400,
                             field="account_number")
    assert SUCCEEDS in unknown["detail"]
    assert FAILS in unknown["detail"]
    elsewhere = {"account_number": SUCCEEDS, "gateway": "nope"}
    assert_problem(await app.client.post(url, headers=ada.auth, json=elsewhere), 400, field="gateway")
    assert_problem(await app.client.post(url, headers=ada.auth, json={"account_number": ""}), 400,
                   field="account_number")
    assert (await app.client.get(url, headers=ada.auth)).json()["items"] == []


async def test_a_payout_to_a_failing_account_gives_the_money_back(app: App) -> None:
    deal = await paid_developer(app)
    broken = await bank_account(app, deal.dev, FAILS)
    refused = await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth,
                                    json=payout(20_000, broken))
    assert_problem(refused, 402)
    assert "no such account" in refused.json()["detail"]
    assert (await deal.balances())["available"] == 36_000
    history = await transactions(app, deal.dev)
    assert [t["kind"] for t in history[:2]] == ["payout_reversal", "payout"]
    assert history[0]["description"] == "Payout to Bank account \u2022\u20221116 returned"
    hold = next(t for t in history if t["kind"] == "hold_end")
    assert hold["contract_id"] == deal.contract["id"]  # known from the release the hold belonged to
    assert hold["description"] == "Hold ended: Design"
    assert await deal.problems() == []


async def test_payouts_only_go_to_ones_own_payout_methods(app: App) -> None:
    deal = await paid_developer(app)
    someone = await client(app)
    theirs = await bank_account(app, someone)
    url = f"{API}/wallet/payouts"
    assert_problem(await app.client.post(url, headers=deal.dev.auth, json=payout(10_000, theirs)), 404)
    mine = await bank_account(app, deal.dev)
    removed = await app.client.delete(f"{API}/wallet/payout-methods/{mine}", headers=deal.dev.auth)
    assert removed.status_code == 204
    assert_problem(await app.client.post(url, headers=deal.dev.auth, json=payout(10_000, mine)), 404)
    assert (await deal.balances())["available"] == 36_000  # nothing left the balance


async def test_a_repeated_payout_with_one_idempotency_key_pays_once(app: App) -> None:
    deal = await paid_developer(app)
    bank = await bank_account(app, deal.dev)
    keyed = {**deal.dev.auth, "Idempotency-Key": "payout-once"}
    first = await app.client.post(f"{API}/wallet/payouts", headers=keyed, json=payout(10_000, bank))
    again = await app.client.post(f"{API}/wallet/payouts", headers=keyed, json=payout(10_000, bank))
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert (await deal.balances())["available"] == 26_000


# ---------------------------------------------------------------------------
# Receipts
# ---------------------------------------------------------------------------


async def test_each_receipt_shows_the_figures_of_its_movement(fee_app: App) -> None:
    app = fee_app
    deal = await hire(app)
    assert (await deal.fund(0)).status_code == 200
    client_browser, dev_browser = await browser_of(app, deal.owner), await browser_of(app, deal.dev)

    funding = await receipt_of(app, deal.owner, "funding")
    assert funding == await receipt_of(app, deal.dev, "funding")  # the developer's contract, too
    shown = await page(client_browser, funding)
    assert shown.status_code == 200, shown.text
    text = text_of(shown)
    for figure in ("Payment receipt", "Milestone amount $400.00", "Client fee $20.00",
                   "Total charged $420.00", "Card \u2022\u2022\u2022\u2022 4242", "Milestone Design", "Paid"):
        assert figure in text, figure
    assert 'data-print' in shown.text  # a Print button (shown by its script)

    assert (await deal.act(deal.owner, 0, "approve")).status_code == 200
    release = await receipt_of(app, deal.dev, "release")
    text = text_of(await page(dev_browser, release))
    for figure in ("Release statement", "Released from escrow $400.00", "Platform fee \u2212$40.00",
                   "Net to the developer $360.00", "Available for payout From "):
        assert figure in text, figure
    assert "Available for payout From " in text_of(await page(client_browser, release))

    await deal.run_timers(days=6)
    assert "Available for payout Since " in text_of(await page(dev_browser, release))
    hold = await receipt_of(app, deal.dev, "hold_end")
    assert "Moved from pending to available $360.00" in text_of(await page(dev_browser, hold))

    bank = await bank_account(app, deal.dev)
    paid = await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth, json=payout(10_000, bank))
    assert paid.status_code == 200, paid.text
    payout_receipt = paid.json()["receipt_url"]
    assert payout_receipt == await receipt_of(app, deal.dev, "payout")
    text = text_of(await page(dev_browser, payout_receipt))
    for figure in ("Payout receipt", "Sent to you $100.00", "Destination Bank account \u2022\u20226789",
                   "Paid"):
        assert figure in text, figure

    assert (await deal.fund(1)).status_code == 200
    assert (await deal.act(deal.dev, 1, "cancel")).status_code == 200
    await deal.run_timers(days=0.01)  # the refund, if not sent at once
    refund = await receipt_of(app, deal.owner, "refund")
    text = text_of(await page(client_browser, refund))
    for figure in ("Refund receipt", "Milestone amount refunded $600.00", "Client fee refunded $30.00",
                   "Total refunded $630.00", "Milestone Build", "Card \u2022\u2022\u2022\u2022 4242"):
        assert figure in text, figure
    sent = await receipt_of(app, deal.owner, "refund_paid")
    assert "Refunded to the card $630.00" in text_of(await page(client_browser, sent))

    # The client was no party to the developer's payout or hold; a stranger to any of it.
    stranger = await browser_of(app, await client(app))
    for url in (funding, release, hold, payout_receipt, refund, sent):
        assert (await page(stranger, url)).status_code == 404, url
    for url in (hold, payout_receipt):
        assert (await page(client_browser, url)).status_code == 404, url
    anonymous = await Browser.anonymous(app)
    answer = await page(anonymous, funding)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
    assert (await page(dev_browser, f"/wallet/receipts/{uuid.uuid4()}")).status_code == 404


async def test_a_failed_payout_has_receipts_that_say_so(app: App) -> None:
    deal = await paid_developer(app)
    broken = await bank_account(app, deal.dev, FAILS)
    await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth, json=payout(20_000, broken))
    browser = await browser_of(app, deal.dev)
    text = text_of(await page(browser, await receipt_of(app, deal.dev, "payout")))
    assert "Failed" in text
    assert "no such account" in text
    assert "back in your available balance" in text
    text = text_of(await page(browser, await receipt_of(app, deal.dev, "payout_reversal")))
    assert "Returned to your available balance $200.00" in text
    assert "Destination Bank account \u2022\u20221116" in text


# ---------------------------------------------------------------------------
# The wallet pages
# ---------------------------------------------------------------------------


async def test_the_wallet_page_shows_balances_history_and_receipts(app: App) -> None:
    deal = await paid_developer(app)
    await deal.fund(1)
    browser = await browser_of(app, deal.dev)
    shown = await page(browser, "/wallet")
    assert shown.status_code == 200, shown.text
    text = text_of(shown)
    assert "Available to pay out $360" in text
    assert "In escrow $600 " in text
    assert 'href="/wallet"' in shown.text  # the account menu's Wallet link
    assert 'href="/api/v1/wallet/transactions.csv"' in shown.text
    links = RECEIPT_LINK.findall(shown.text)
    assert len(links) == 4  # funding, hold_end, release, funding
    assert "Payment released: Design" in text
    assert "Milestone funded: Build" in text
    for link in links:
        assert (await page(browser, link)).status_code == 200

    only = await page(browser, "/wallet?kind=release&currency=USD")
    assert len(RECEIPT_LINK.findall(only.text)) == 1
    assert 'href="/api/v1/wallet/transactions.csv?currency=USD&amp;kind=release"' in only.text
    nothing = await page(browser, "/wallet?kind=payout")
    assert "Nothing matches these filters" in text_of(nothing)

    newcomer = await browser_of(app, await client(app))
    empty = text_of(await page(newcomer, "/wallet"))
    assert "No money has moved yet" in empty
    assert "No movements yet" in empty
    anonymous = await Browser.anonymous(app)
    assert (await page(anonymous, "/wallet")).headers["location"].startswith("/login")


async def test_the_history_pages_by_cursor(app: App) -> None:
    deal = await paid_developer(app)  # 3 movements
    bank = await bank_account(app, deal.dev)
    for _ in range(18):
        paid = await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth, json=payout(1_000, bank))
        assert paid.status_code == 200, paid.text
    browser = await browser_of(app, deal.dev)
    first = await page(browser, "/wallet")
    assert len(RECEIPT_LINK.findall(first.text)) == 20
    older = re.search(r'href="(/wallet\?cursor=[^"]+)" rel="next"', first.text)
    assert older, "no link to older movements"
    second = await page(browser, html.unescape(older.group(1)))
    assert RECEIPT_LINK.findall(second.text) == [await receipt_of(app, deal.dev, "funding")]
    assert "Newest" in text_of(second)
    assert 'rel="next"' not in second.text


async def test_the_payout_form_explains_mistakes_and_refusals(app: App) -> None:
    deal = await paid_developer(app)
    browser = await browser_of(app, deal.dev)
    nowhere = text_of(await page(browser, "/wallet/payout"))
    assert "You have no payout method yet" in nowhere

    bank = await bank_account(app, deal.dev)
    broken = await bank_account(app, deal.dev, FAILS)
    form = await page(browser, "/wallet/payout")
    text = text_of(form)
    assert "You have $360 available. The smallest payout is $10." in text
    assert 'value="360"' in form.text  # the whole balance, typed in major units
    assert "Bank account \u2022\u20226789" in text
    assert "Bank account \u2022\u20221116" in text

    async def send(amount: str, method: str = bank) -> Any:
        return await submit(browser, "/wallet/payout", {"amount": amount, "currency": "USD",
                                                         "payout_method_id": method})

    for amount, status, message in (("5", 400, "The smallest payout is $10."),
                                    ("four", 400, "Enter an amount such as 45 or 62.50."),
                                    ("360.01", 400, "You have $360 available to pay out."),
                                    ("", 400, "Enter how much to pay out.")):
        answer = await send(amount)
        assert answer.status_code == status, (amount, answer.status_code)
        assert 'id="amount-error"' in answer.text, amount
        assert message in text_of(answer), amount
        assert 'aria-invalid="true"' in answer.text
        assert f'value="{amount}"' in answer.text  # the input is kept

    someone = await client(app)
    theirs = await bank_account(app, someone)
    answer = await send("50", theirs)
    assert answer.status_code == 400
    assert 'id="payout_method_id-error"' in answer.text

    refused = await send("200", broken)
    assert refused.status_code == 402
    assert "Your payout was refused. The bank refused the transfer: no such account." in text_of(refused)
    assert (await deal.balances())["available"] == 36_000

    sent = await send("250.50")
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/wallet?done=paid"
    wallet = text_of(await page(browser, sent.headers["location"]))
    assert "Your payout is sent." in wallet
    assert "Available to pay out $109.50" in wallet
    assert (await deal.balances())["available"] == 10_950

    without_token = await browser.request("POST", "/wallet/payout", headers=HTML,
                                          data={"amount": "20", "currency": "USD", "payout_method_id": bank})
    assert without_token.status_code == 403
    assert (await deal.balances())["available"] == 10_950


async def test_payout_methods_are_added_and_removed_through_their_page(app: App) -> None:
    deal = await paid_developer(app)
    browser = await browser_of(app, deal.dev)
    shown = await page(browser, "/wallet/payout-methods")
    text = text_of(shown)
    assert "No payout method yet" in text
    assert f"{SUCCEEDS} : payouts succeed" in text
    assert f"{FAILS} : payouts fail" in text

    wrong = await submit(browser, "/wallet/payout-methods",
                         {"account_number": "000999999999", "gateway": "sandbox"})
    assert wrong.status_code == 400
    assert 'id="account_number-error"' in wrong.text
    assert 'aria-invalid="true"' in wrong.text
    assert "add a test account" in text_of(wrong)
    assert 'value="000999999999"' in wrong.text

    added = await submit(browser, "/wallet/payout-methods", {"account_number": SUCCEEDS,
                                                             "gateway": "sandbox"})
    assert added.status_code == 303
    assert added.headers["location"] == "/wallet/payout-methods?done=method-added"
    text = text_of(await page(browser, added.headers["location"]))
    assert "Payout method added." in text
    assert "Bank account \u2022\u20226789" in text

    back = await submit(browser, "/wallet/payout-methods", {"account_number": FAILS, "next": "payout"})
    assert back.headers["location"] == "/wallet/payout"
    methods = (await app.client.get(f"{API}/wallet/payout-methods", headers=deal.dev.auth)).json()["items"]
    assert len(methods) == 2

    someone = await browser_of(app, await client(app))
    gone = await submit(someone, f"/wallet/payout-methods/{methods[0]['id']}/delete", {})
    assert gone.status_code == 404
    removed = await submit(browser, f"/wallet/payout-methods/{methods[0]['id']}/delete", {})
    assert removed.status_code == 303
    assert "Payout method removed." in text_of(await page(browser, removed.headers["location"]))
    left = (await app.client.get(f"{API}/wallet/payout-methods", headers=deal.dev.auth)).json()["items"]
    assert [m["id"] for m in left] == [methods[1]["id"]]

