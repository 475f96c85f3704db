"""Milestones through the API with the sandbox gateway: funding into escrow, submitting, asking
for changes, partial release, approval (by the client or by the timer), cancelling with a
refund, payout holds; who may do what; and races that must move money once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from mercato.core.contracts.milestones import MilestoneService
from mercato.core.db import utcnow
from mercato.core.ledger.models import Purpose
from mercato.core.ledger.services import Account, Ledger
from mercato.core.payments.gateways import ChargeRequest, Outcome, WebhookEvent
from mercato.plugins.sandbox_payments.gateway import SandboxGateway
from tests.conftest import Databases, MakeSettings
from tests.marketplace_helpers import (
    API,
    MARKET_ACCOUNTS,
    App,
    Apps,
    Person,
    assert_problem,
    bid,
    client,
    developer,
    market_settings,
    open_market,
    post_project,
    send_concurrently,
)

CARD = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"


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


class Deal:
    """A contract between a client and a developer, hired through a proposal."""

    def __init__(self, app: App, owner: Person, dev: Person, contract: dict[str, Any]) -> None:
        self.app, self.owner, self.dev, self.contract = app, owner, dev, contract

    @property
    def milestones(self) -> list[dict[str, Any]]:
        return list(self.contract["milestones"])

    def url(self, index: int, action: str) -> str:
        return f"{API}/milestones/{self.milestones[index]['id']}/{action}"

    async def act(self, who: Person, index: int, action: str, body: Any = None) -> Any:
        return await self.app.client.post(self.url(index, action), headers=who.auth, json=body)

    async def fund(self, index: int = 0, card: str = CARD) -> Any:
        return await self.act(self.owner, index, "fund", {"payment_method": card})

    async def balances(self) -> dict[str, int]:
        contract = uuid.UUID(self.contract["id"])
        dev, owner = uuid.UUID(self.dev.id), uuid.UUID(self.owner.id)
        accounts = {
            "escrow": Account.escrow(contract, "USD"),
            "pending": Account.user(dev, Purpose.DEVELOPER_PENDING, "USD"),
            "available": Account.user(dev, Purpose.DEVELOPER_AVAILABLE, "USD"),
            "client_funding": Account.user(owner, Purpose.CLIENT_FUNDING, "USD"),
            # This contract's shard of each (see mercato.core.ledger.services.SHARDS).
            "revenue": Account.revenue("USD", by=contract),
            "gateway": Account.gateway("sandbox", "USD", by=contract),
        }

        async def read() -> dict[str, int]:
            async with self.app.site.db.reading() as session:
                return {name: await Ledger().balance(session, account) for name, account in accounts.items()}

        return await self.app.on_loop(read)

    async def problems(self) -> list[str]:
        async def verify() -> list[str]:
            async with self.app.site.db.reading() as session:
                return await Ledger().verify(session)

        return await self.app.on_loop(verify)

    async def run_timers(self, days: float) -> None:
        """Run every timer due ``days`` from now (the sandbox's webhooks among them fail to reach
        this in-process app and wait for a retry; nothing here depends on them)."""
        await self.app.on_loop(lambda: self.app.site.timers.run_due(utcnow() + timedelta(days=days)))

    async def milestone(self, index: int = 0) -> dict[str, Any]:
        url = f"{API}/contracts/{self.contract['id']}"
        contract = await self.app.client.get(url, headers=self.owner.auth)
        return dict(contract.json()["milestones"][index])


async def hire(app: App, milestones: list[tuple[str, int]] | None = None) -> Deal:
    owner, dev = await client(app), await developer(app)
    project = await post_project(app, owner)
    plan = milestones or [("Design", 40_000), ("Build", 60_000)]
    proposal = await bid(app, dev, project, amount=sum(amount for _, amount in plan),
                         milestones=[{"title": title, "amount": amount} for title, amount in plan])
    accepted = await app.client.post(f"{API}/proposals/{proposal['id']}/accept", headers=owner.auth)
    assert accepted.status_code == 200, accepted.text
    contract = await app.client.get(f"{API}/contracts/{accepted.json()['contract_id']}", headers=owner.auth)
    return Deal(app, owner, dev, contract.json())


async def test_fund_submit_change_resubmit_approve_then_the_hold_ends(app: App) -> None:
    deal = await hire(app)
    funded = await deal.fund()
    assert funded.status_code == 200, funded.text
    assert funded.json()["status"] == "funded"
    assert funded.json()["in_escrow"] == 40_000
    contract = await app.client.get(f"{API}/contracts/{deal.contract['id']}", headers=deal.dev.auth)
    assert contract.json()["status"] == "active"
    assert await deal.balances() == {"escrow": 40_000, "pending": 0, "available": 0, "client_funding": 0,
                                     "revenue": 0, "gateway": -40_000}

    assert (await deal.act(deal.dev, 0, "submit", {"note": "First cut"})).json()["status"] == "submitted"
    changes = await deal.act(deal.owner, 0, "request-changes", {"message": "Bigger logo"})
    assert changes.json()["status"] == "changes_requested"
    assert (await deal.act(deal.dev, 0, "submit", {"note": "Bigger"})).json()["status"] == "submitted"
    approved = await deal.act(deal.owner, 0, "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["released"] == 40_000
    assert approved.json()["in_escrow"] == 0
    # 10% to the platform; the developer's 90% is pending for the hold.
    assert await deal.balances() == {"escrow": 0, "pending": 36_000, "available": 0, "client_funding": 0,
                                     "revenue": 4_000, "gateway": -40_000}

    await deal.run_timers(days=4)
    assert (await deal.balances())["available"] == 0
    await deal.run_timers(days=6)
    balances = await deal.balances()
    assert (balances["pending"], balances["available"]) == (0, 36_000)
    assert await deal.problems() == []


async def test_a_declined_card_is_a_402_and_the_milestone_waits(app: App) -> None:
    deal = await hire(app)
    declined = await deal.fund(card=DECLINED)
    assert_problem(declined, 402)
    assert "declined" in declined.json()["detail"]
    unknown = await deal.fund(card="1234 5678")
    assert_problem(unknown, 402)
    assert "4242 4242 4242 4242" in unknown.json()["detail"]
    contract = await app.client.get(f"{API}/contracts/{deal.contract['id']}", headers=deal.owner.auth)
    assert contract.json()["milestones"][0]["status"] == "pending"
    assert contract.json()["status"] == "pending_funding"
    assert (await deal.fund()).json()["status"] == "funded"
    assert (await deal.balances())["escrow"] == 40_000


async def test_partial_releases_then_approval_pay_exactly_the_milestone(app: App) -> None:
    deal = await hire(app)
    await deal.fund()
    part = await deal.act(deal.owner, 0, "release", {"amount": 10_000})
    assert part.json()["status"] == "funded"
    assert (part.json()["released"], part.json()["in_escrow"]) == (10_000, 30_000)
    too_much = await deal.act(deal.owner, 0, "release", {"amount": 30_001})
    assert_problem(too_much, 409)
    await deal.act(deal.dev, 0, "submit", {"note": "done"})
    done = await deal.act(deal.owner, 0, "approve")
    assert (done.json()["status"], done.json()["released"]) == ("approved", 40_000)
    balances = await deal.balances()
    assert balances["escrow"] == 0
    assert balances["pending"] + balances["revenue"] == 40_000
    assert balances["revenue"] == 4_000
    assert await deal.problems() == []


async def test_releasing_all_that_is_left_approves(app: App) -> None:
    deal = await hire(app)
    await deal.fund()
    done = await deal.act(deal.owner, 0, "release", {"amount": 40_000})
    assert (done.json()["status"], done.json()["in_escrow"]) == ("approved", 0)


async def test_a_silent_client_is_taken_as_approving_after_the_days_set(app: App) -> None:
    deal = await hire(app)
    await deal.fund()
    await deal.act(deal.dev, 0, "submit", {"note": "done"})
    await deal.run_timers(days=13)
    assert (await deal.milestone())["status"] == "submitted"
    # At day 14 the milestone is approved; the payout hold that starts then (five days from
    # the real now) is over by that moment too.
    await deal.run_timers(days=14.01)
    assert (await deal.milestone())["status"] == "approved"
    assert (await deal.balances())["available"] == 36_000


async def test_asking_for_changes_stops_the_auto_approval(app: App) -> None:
    deal = await hire(app)
    await deal.fund()
    await deal.act(deal.dev, 0, "submit", {"note": "done"})
    await deal.act(deal.owner, 0, "request-changes", {"message": "no"})
    await deal.run_timers(days=30)
    assert (await deal.milestone())["status"] == "changes_requested"


async def test_cancelling_refunds_the_escrow_to_the_client(apps: Apps) -> None:
    settings = await apps.settings(accounts=MARKET_ACCOUNTS, payments={"client_fee_percent": 5.0})
    app = await open_market(apps, settings=settings)
    deal = await hire(app)
    funded = await deal.fund()
    assert funded.json()["client_fee"] == 2_000
    assert (await deal.balances())["gateway"] == -42_000
    refused = await deal.act(deal.owner, 0, "cancel")
    assert_problem(refused, 403)
    assert "open a dispute" in refused.json()["detail"]
    cancelled = await deal.act(deal.dev, 0, "cancel")
    assert (cancelled.json()["status"], cancelled.json()["refunded"]) == ("cancelled", 40_000)
    # Escrow and the client fee went back through the client's refund balance to the card.
    assert await deal.balances() == {"escrow": 0, "pending": 0, "available": 0, "client_funding": 0,
                                     "revenue": 0, "gateway": 0}
    # The second milestone was never funded: either party cancels it, no money moves.
    assert (await deal.act(deal.owner, 1, "cancel")).json()["status"] == "cancelled"
    assert_problem(await deal.fund(1), 409)
    assert await deal.problems() == []


async def test_each_action_is_for_one_party_and_hidden_from_strangers(app: App) -> None:
    deal = await hire(app)
    stranger = await client(app)
    for action, body in (("fund", {"payment_method": CARD}), ("submit", {}), ("approve", None),
                         ("request-changes", {"message": "x"}), ("release", {"amount": 1}), ("cancel", None)):
        assert_problem(await deal.act(stranger, 0, action, body), 404)
    assert_problem(await deal.act(deal.dev, 0, "fund", {"payment_method": CARD}), 403)
    await deal.fund()
    assert_problem(await deal.act(deal.owner, 0, "submit", {}), 403)
    assert_problem(await deal.act(deal.dev, 0, "approve"), 403)
    assert_problem(await deal.act(deal.dev, 0, "release", {"amount": 1}), 403)
    assert_problem(await deal.act(deal.owner, 0, "fund", {"payment_method": CARD}), 409)  # funded already
    missing = await app.client.post(f"{API}/milestones/{uuid.uuid4()}/approve", headers=deal.owner.auth)
    assert_problem(missing, 404)
    bad = await deal.act(deal.owner, 1, "fund", {"payment_method": CARD, "gateway": "nope"})
    assert_problem(bad, 400)
    assert "installed: sandbox" in bad.text


async def test_concurrent_approvals_pay_once(apps: Apps) -> None:
    settings = await market_settings(apps)
    a = await open_market(apps, settings=settings)
    b = await open_market(apps, settings=settings)
    deal = await hire(a)
    await deal.fund()
    await deal.act(deal.dev, 0, "submit", {"note": "done"})
    url = deal.url(0, "approve")
    answers = await send_concurrently(*((a if n % 2 else b, "POST", url, deal.owner.auth, None)
                                        for n in range(50)))
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409}
    assert (await deal.balances())["pending"] == 36_000
    assert await deal.problems() == []


async def test_approval_racing_cancel_settles_one_way(apps: Apps) -> None:
    settings = await market_settings(apps)
    a = await open_market(apps, settings=settings)
    b = await open_market(apps, settings=settings)
    deal = await hire(a)
    await deal.fund()
    (approve, _), (cancel, _) = await send_concurrently(
        (a, "POST", deal.url(0, "release"), deal.owner.auth, {"amount": 40_000}),
        (b, "POST", deal.url(0, "cancel"), deal.dev.auth, None),
    )
    assert sorted([approve, cancel]) == [200, 409]
    balances = await deal.balances()
    assert balances["escrow"] == 0
    if approve == 200:
        assert (balances["pending"], balances["gateway"]) == (36_000, -40_000)
    else:  # refunded to the card
        assert (balances["pending"], balances["gateway"]) == (0, 0)
    assert balances["client_funding"] == 0
    assert await deal.problems() == []


async def crash_after_the_gateway_answered(deal: Deal, card: str = CARD) -> str:
    """What a process that dies between the gateway's answer and recording it leaves behind:
    the milestone ``funding``, its payment pending, the gateway's books saying it succeeded.
    Returns the payment's reference."""
    site = deal.app.site
    milestone_id, client_id = uuid.UUID(deal.milestones[0]["id"]), uuid.UUID(deal.owner.id)

    async def begin_and_charge() -> str:
        async with site.db.transaction() as session:
            payment = await MilestoneService(site).begin_funding(session, milestone_id, client_id, "sandbox")
            request = ChargeRequest(reference=payment.reference, amount=payment.amount,
                                    currency=payment.currency, payment_method=card)
        result = await site.gateways.get("sandbox").charge(request)
        assert result.outcome == Outcome.SUCCEEDED
        return request.reference

    reference: str = await deal.app.on_loop(begin_and_charge)
    assert (await deal.milestone())["status"] == "funding"
    return reference


async def test_after_a_crash_the_gateways_webhook_settles_the_charge_once(app: App) -> None:
    deal = await hire(app)
    reference = await crash_after_the_gateway_answered(deal)
    gateway = app.site.gateways.get("sandbox")
    assert isinstance(gateway, SandboxGateway)
    answer = await app.on_loop(lambda: gateway.retrieve("charge", reference))
    assert answer is not None
    body = gateway.webhook_body(WebhookEvent(id="evt_crash", kind="charge", reference=reference,
                                             gateway_id=answer.gateway_id, outcome=answer.outcome))
    url = f"{API}/payments/webhooks/sandbox"

    forged = await app.client.post(url, content=body, headers={"Sandbox-Signature": "t=1,v1=00"})
    assert_problem(forged, 400)
    assert (await deal.milestone())["status"] == "funding"

    signed = {"Sandbox-Signature": gateway.sign(body), "content-type": "application/json"}
    first = await app.client.post(url, content=body, headers=signed)
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "ok"}
    assert (await deal.milestone())["status"] == "funded"
    again = await app.client.post(url, content=body, headers=signed)
    assert again.json() == {"status": "duplicate"}
    assert (await deal.balances())["escrow"] == 40_000
    assert await deal.problems() == []
    assert_problem(await app.client.post(f"{API}/payments/webhooks/nope", content=body, headers=signed), 404)


async def test_after_a_crash_the_sweeper_asks_the_gateway(app: App) -> None:
    deal = await hire(app)
    await crash_after_the_gateway_answered(deal)
    await deal.run_timers(days=0)
    assert (await deal.milestone())["status"] == "funding"  # not yet: the check waits ten minutes
    await deal.run_timers(days=0.01)
    assert (await deal.milestone())["status"] == "funded"
    assert (await deal.balances())["escrow"] == 40_000
    assert await deal.problems() == []


async def test_a_charge_that_never_reached_the_gateway_fails_on_the_check(app: App) -> None:
    deal = await hire(app)
    site = app.site

    async def begin_only() -> None:
        async with site.db.transaction() as session:
            await MilestoneService(site).begin_funding(session, uuid.UUID(deal.milestones[0]["id"]),
                                                       uuid.UUID(deal.owner.id), "sandbox")

    await app.on_loop(begin_only)
    assert_problem(await deal.fund(), 409)  # one payment at a time
    await deal.run_timers(days=0.01)
    assert (await deal.milestone())["status"] == "pending"
    assert (await deal.fund()).json()["status"] == "funded"


async def test_a_pending_card_leaves_the_milestone_funding(app: App) -> None:
    deal = await hire(app)
    answer = await deal.fund(card="4000 0000 0000 3220")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["in_escrow"]) == ("funding", 0)
    assert_problem(await deal.act(deal.owner, 0, "cancel"), 409)


async def test_an_idempotency_key_replays_the_first_answer_and_moves_money_once(app: App) -> None:
    deal = await hire(app)
    keyed = {**deal.owner.auth, "Idempotency-Key": "fund-1"}
    body = {"payment_method": CARD}
    first = await app.client.post(deal.url(0, "fund"), headers=keyed, json=body)
    assert first.status_code == 200, first.text
    again = await app.client.post(deal.url(0, "fund"), headers=keyed, json=body)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert (await deal.balances())["escrow"] == 40_000  # charged once

    other_body = await app.client.post(deal.url(0, "fund"), headers=keyed, json={"payment_method": DECLINED})
    assert_problem(other_body, 409)
    assert "different request" in other_body.json()["detail"]
    other_path = await app.client.post(deal.url(1, "fund"), headers=keyed, json=body)
    assert_problem(other_path, 409)

    # Keys are each person's own, and a refused request's answer is kept like any other.
    dev_keyed = {**deal.dev.auth, "Idempotency-Key": "fund-1"}
    refused = await app.client.post(deal.url(0, "approve"), headers=dev_keyed)
    assert_problem(refused, 403)
    replayed = await app.client.post(deal.url(0, "approve"), headers=dev_keyed)
    assert replayed.headers["idempotent-replayed"] == "true"

    long_key = {**deal.owner.auth, "Idempotency-Key": "k" * 256}
    too_long = await app.client.post(deal.url(1, "fund"), headers=long_key, json=body)
    assert_problem(too_long, 400)


async def test_concurrent_requests_with_one_key_run_once(apps: Apps) -> None:
    settings = await market_settings(apps)
    a = await open_market(apps, settings=settings)
    b = await open_market(apps, settings=settings)
    deal = await hire(a)
    keyed = {**deal.owner.auth, "Idempotency-Key": "approve-once"}
    await deal.fund()
    await deal.act(deal.dev, 0, "submit", {"note": "done"})
    answers = await send_concurrently(*((a if n % 2 else b, "POST", deal.url(0, "approve"), keyed, None)
                                        for n in range(10)))
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 409}, answers
    assert 200 in statuses
    assert (await deal.balances())["pending"] == 36_000


async def paid_developer(app: App) -> Deal:
    """A deal whose developer has 36,000 available (40,000 approved, less 10%, hold over)."""
    deal = await hire(app)
    await deal.fund()
    await deal.act(deal.owner, 0, "approve")
    await deal.run_timers(days=6)
    return deal


SUCCEEDS, FAILS = "000123456789", "000111111116"
"""The sandbox's test bank accounts: payouts to the first succeed, to the second fail."""


async def bank_account(app: App, who: Person, account_number: str = SUCCEEDS) -> str:
    """Register a payout method for ``who``; its id."""
    added = await app.client.post(f"{API}/wallet/payout-methods", headers=who.auth,
                                  json={"account_number": account_number})
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


def payout(amount: int, method: str, currency: str = "USD") -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "payout_method_id": method}


async def test_wallets_show_balances_history_and_pay_out(app: App) -> None:
    deal = await paid_developer(app)
    await deal.fund(1)
    wallet = (await app.client.get(f"{API}/wallet", headers=deal.dev.auth)).json()
    assert wallet == {"balances": [
        {"currency": "USD", "available": 36_000, "pending": 0, "in_escrow": 60_000, "refunds": 0},
    ]}
    client_wallet = (await app.client.get(f"{API}/wallet", headers=deal.owner.auth)).json()
    assert client_wallet["balances"][0]["in_escrow"] == 60_000
    stranger = await client(app)
    assert (await app.client.get(f"{API}/wallet", headers=stranger.auth)).json() == {"balances": []}

    bank, broken = await bank_account(app, deal.dev), await bank_account(app, deal.dev, FAILS)
    paid = await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth, json=payout(10_000, bank))
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount"]) == ("succeeded", 10_000)
    assert paid.json()["destination"] == "Bank account \u2022\u20226789"
    refused = await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth,
                                    json=payout(5_000, broken))
    assert_problem(refused, 402)
    assert "no such account" in refused.json()["detail"]
    assert (await deal.balances())["available"] == 26_000  # the refused payout gave it back
    too_small = await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth, json=payout(999, bank))
    assert_problem(too_small, 409)
    short = await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth, json=payout(26_001, bank))
    assert_problem(short, 409)
    assert_problem(await app.client.post(f"{API}/wallet/payouts", headers=deal.dev.auth,
                                         json=payout(5_000, bank, currency="XXX")), 400)

    history = (await app.client.get(f"{API}/wallet/transactions", headers=deal.dev.auth)).json()
    kinds = [item["kind"] for item in history["items"]]
    # The escrow of one's contracts is one's balance too: both fundings show.
    assert kinds == ["payout_reversal", "payout", "payout", "funding", "hold_end", "release", "funding"]
    assert history["items"][-2]["entries"] == [
        {"purpose": "developer_pending", "amount": 36_000, "currency": "USD"},
        {"purpose": "escrow", "amount": -40_000, "currency": "USD"},
    ]
    assert history["items"][-2]["description"] == "Payment released: Design"
    assert history["items"][-2]["receipt_url"] == f"/wallet/receipts/{history['items'][-2]['id']}"
    only_payouts = (await app.client.get(f"{API}/wallet/transactions", headers=deal.dev.auth,
                                         params={"kind": "payout", "limit": 1})).json()
    assert len(only_payouts["items"]) == 1
    assert only_payouts["next_cursor"]
    csv_file = await app.client.get(f"{API}/wallet/transactions.csv", headers=deal.dev.auth)
    assert csv_file.headers["content-type"].startswith("text/csv")
    lines = csv_file.text.strip().splitlines()
    assert lines[0].startswith("transaction_id,created_at,kind,balance,amount_minor")
    # hold_end moves two balances of the developer's, a release one of theirs and the escrow
    assert len(lines) == 1 + 9
    assert await deal.problems() == []


async def test_two_payouts_racing_for_one_balance_never_overdraw(apps: Apps) -> None:
    settings = await market_settings(apps)
    a = await open_market(apps, settings=settings)
    b = await open_market(apps, settings=settings)
    deal = await paid_developer(a)
    bank = await bank_account(a, deal.dev)
    url = f"{API}/wallet/payouts"
    answers = await send_concurrently(*((a if n % 2 else b, "POST", url, deal.dev.auth, payout(20_000, bank))
                                        for n in range(6)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 409, 409, 409, 409, 409], answers
    assert (await deal.balances())["available"] == 16_000
    assert await deal.problems() == []


async def test_a_charge_confirmed_after_it_was_given_up_is_owed_to_the_client(app: App) -> None:
    """The check gave the charge up (the gateway had no record of it yet); then the gateway's
    webhook says it succeeded after all. The milestone was funded again meanwhile, so the money
    must not land in escrow twice: it is owed back to the client, and nothing is lost."""
    deal = await hire(app)
    site = app.site

    async def begin_only() -> str:
        async with site.db.transaction() as session:
            payment = await MilestoneService(site).begin_funding(
                session, uuid.UUID(deal.milestones[0]["id"]), uuid.UUID(deal.owner.id), "sandbox")
            return payment.reference

    reference: str = await app.on_loop(begin_only)
    await deal.run_timers(days=0.01)  # given up: the gateway never heard of it
    assert (await deal.fund()).json()["status"] == "funded"
    gateway = site.gateways.get("sandbox")
    assert isinstance(gateway, SandboxGateway)
    body = gateway.webhook_body(WebhookEvent(id="evt_late", kind="charge", reference=reference,
                                             gateway_id="sb_late", outcome=Outcome.SUCCEEDED))
    late = await app.client.post(f"{API}/payments/webhooks/sandbox", content=body,
                                 headers={"Sandbox-Signature": gateway.sign(body)})
    assert late.status_code == 200, late.text
    balances = await deal.balances()
    assert (balances["escrow"], balances["client_funding"], balances["gateway"]) == (40_000, 40_000, -80_000)
    assert await deal.problems() == []
