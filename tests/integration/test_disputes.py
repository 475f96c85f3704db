"""Contracts beyond one milestone's money: extra milestones proposed and accepted, completing and
cancelling, deliverable files and the timeline; and disputes: freezing, evidence, the response
window, an admin's split, who may see and do what."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from mercato.core.contracts.milestones import MilestoneService
from mercato.core.payments.models import Payment, PaymentKind
from mercato.core.payments.refunds import REFUND_SEND
from mercato.core.timers.models import Timer
from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_api import png_bytes
from tests.integration.test_accounts_security import make_admin
from tests.integration.test_milestones import Deal, hire
from tests.marketplace_helpers import (
    API,
    App,
    Apps,
    Person,
    assert_problem,
    client,
    market_settings,
    open_market,
    send_concurrently,
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


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


async def upload(deal: Deal, who: Person, name: str = "report.png") -> dict[str, Any]:
    return await ok(
        await deal.app.client.post(
            f"{API}/contracts/{deal.contract['id']}/files",
            headers=who.auth,
            files={"file": (name, png_bytes(), "image/png")},
        ),
        201,
    )


async def timeline(deal: Deal, who: Person) -> list[dict[str, Any]]:
    page = await ok(
        await deal.app.client.get(f"{API}/contracts/{deal.contract['id']}/activity", headers=who.auth)
    )
    return list(reversed(page["items"]))


async def contract(deal: Deal) -> dict[str, Any]:
    return await ok(
        await deal.app.client.get(f"{API}/contracts/{deal.contract['id']}", headers=deal.owner.auth)
    )


# ---------------------------------------------------------------------------
# Contracts
# ---------------------------------------------------------------------------


async def test_either_party_proposes_a_milestone_and_only_the_other_accepts(app: App) -> None:
    deal = await hire(app)
    url = f"{API}/contracts/{deal.contract['id']}/milestones"
    proposed = await ok(
        await app.client.post(
            url, headers=deal.dev.auth, json={"title": "Extra: admin panel", "amount": 25_000, "due_days": 7}
        ),
        201,
    )
    assert proposed["status"] == "proposed"
    assert proposed["proposed_by"] == deal.dev.id
    assert proposed["position"] == 2
    assert (await contract(deal))["total"] == 100_000  # not counted until accepted
    accept = f"{API}/milestones/{proposed['id']}/accept"
    assert_problem(await app.client.post(accept, headers=deal.dev.auth), 403)
    assert_problem(
        await app.client.post(
            f"{API}/milestones/{proposed['id']}/fund",
            headers=deal.owner.auth,
            json={"payment_method": "4242424242424242"},
        ),
        409,
    )
    accepted = await ok(await app.client.post(accept, headers=deal.owner.auth))
    assert accepted["status"] == "pending"
    assert (await contract(deal))["total"] == 125_000
    assert_problem(await app.client.post(accept, headers=deal.owner.auth), 409)
    # the client proposes one, then declines their own by cancelling it
    mine = await ok(
        await app.client.post(url, headers=deal.owner.auth, json={"title": "Docs", "amount": 5_000}), 201
    )
    cancelled = await ok(
        await app.client.post(f"{API}/milestones/{mine['id']}/cancel", headers=deal.owner.auth)
    )
    assert cancelled["status"] == "cancelled"
    assert (await contract(deal))["total"] == 125_000
    kinds = [step["kind"] for step in await timeline(deal, deal.dev)]
    assert kinds == [
        "contract.created",
        "milestone.proposed",
        "milestone.accepted",
        "milestone.proposed",
        "milestone.cancelled",
    ]
    stranger = await client(app, "Stranger")
    assert_problem(await app.client.post(url, headers=stranger.auth, json={"title": "X", "amount": 1}), 404)
    assert_problem(await app.client.post(url, headers=deal.dev.auth, json={"title": "", "amount": 0}), 400)


async def test_a_contract_completes_only_when_every_milestone_is_settled(app: App) -> None:
    deal = await hire(app)
    complete = f"{API}/contracts/{deal.contract['id']}/complete"
    assert_problem(await app.client.post(complete, headers=deal.owner.auth), 409)  # not started
    await ok(await deal.fund(0))
    await ok(await deal.act(deal.owner, 0, "approve"))
    problem = assert_problem(await app.client.post(complete, headers=deal.dev.auth), 409)
    assert "Build" in problem["detail"]
    await ok(await deal.act(deal.dev, 1, "cancel"))
    done = await ok(await app.client.post(complete, headers=deal.dev.auth))
    assert done["status"] == "completed"
    assert done["ended_at"]
    assert_problem(await deal.act(deal.owner, 1, "fund", {"payment_method": "4242424242424242"}), 409)
    assert [s["kind"] for s in await timeline(deal, deal.owner)][-1] == "contract.completed"


async def test_a_contract_is_cancelled_only_while_nothing_is_in_escrow(app: App) -> None:
    deal = await hire(app)
    cancel = f"{API}/contracts/{deal.contract['id']}/cancel"
    await ok(await deal.fund(0))
    problem = assert_problem(await app.client.post(cancel, headers=deal.owner.auth), 409)
    assert "Design" in problem["detail"]
    await ok(await deal.act(deal.dev, 0, "cancel"))  # the developer refunds it
    ended = await ok(await app.client.post(cancel, headers=deal.owner.auth))
    assert ended["status"] == "cancelled"
    assert [m["status"] for m in ended["milestones"]] == ["cancelled", "cancelled"]
    assert_problem(await app.client.post(cancel, headers=deal.owner.auth), 409)
    assert await deal.problems() == []


async def test_submitted_files_reach_the_client_and_no_one_else(app: App) -> None:
    deal = await hire(app)
    await ok(await deal.fund(0))
    report = await upload(deal, deal.dev, "report.png")
    # before it is handed over, only its uploader sees it
    assert_problem(await app.client.get(report["url"], headers=deal.owner.auth), 404)
    assert (await app.client.get(report["url"], headers=deal.dev.auth)).status_code == 200
    # the client cannot hand over the developer's file
    assert_problem(await deal.act(deal.owner, 0, "request-changes", {"message": "x"}), 409)
    other = await hire(app)
    foreign = await upload(other, other.dev)
    bad = await deal.act(deal.dev, 0, "submit", {"note": "Done", "files": [foreign["id"]]})
    assert_problem(bad, 400)
    assert (await deal.milestone())["status"] == "funded"  # nothing half-done
    await ok(
        await deal.act(deal.dev, 0, "submit", {"note": "All done, see the report.", "files": [report["id"]]})
    )
    download = await app.client.get(report["url"], headers=deal.owner.auth)
    assert download.status_code == 200
    assert download.content == png_bytes()
    assert download.headers["content-disposition"].startswith("attachment")
    steps = await timeline(deal, deal.owner)
    submitted = steps[-1]
    assert submitted["kind"] == "milestone.submitted"
    assert submitted["message"] == "All done, see the report."
    assert [f["filename"] for f in submitted["files"]] == ["report.png"]
    # handed over: it stays, and cannot be handed over twice
    assert_problem(await app.client.delete(report["url"], headers=deal.dev.auth), 409)
    await ok(await deal.act(deal.owner, 0, "request-changes", {"message": "More please"}))
    assert_problem(await deal.act(deal.dev, 0, "submit", {"files": [report["id"]]}), 400)
    stranger = await client(app, "Stranger")
    assert_problem(await app.client.get(report["url"], headers=stranger.auth), 404)
    # a loose file may be removed by its uploader
    loose = await upload(deal, deal.dev, "draft.png")
    assert (await app.client.delete(loose["url"], headers=deal.dev.auth)).status_code == 204
    assert_problem(await app.client.get(loose["url"], headers=deal.dev.auth), 404)


# ---------------------------------------------------------------------------
# Disputes
# ---------------------------------------------------------------------------


async def open_dispute(deal: Deal, who: Person, index: int = 0) -> dict[str, Any]:
    return await ok(
        await deal.act(who, index, "dispute", {"reason": "The work does not match the brief."}), 201
    )


async def test_an_admin_splits_a_dispute_60_40(app: App) -> None:
    deal = await hire(app)
    await ok(await deal.fund(0))
    await ok(await deal.act(deal.dev, 0, "submit", {"note": "Done"}))
    dispute = await open_dispute(deal, deal.owner)
    assert dispute["status"] == "open"
    assert dispute["amount"] == 40_000
    assert dispute["respondent_id"] == deal.dev.id
    assert (await contract(deal))["status"] == "disputed"
    assert (await deal.milestone())["status"] == "disputed"
    # frozen: no release, no approval, no cancel, no second dispute; the other milestone waits too
    for action, body in (("approve", None), ("release", {"amount": 100}), ("cancel", None)):
        assert_problem(await deal.act(deal.owner, 0, action, body), 409)
    assert_problem(await deal.act(deal.dev, 0, "cancel"), 409)
    assert_problem(await deal.act(deal.dev, 0, "dispute", {"reason": "Me too, me too."}), 409)
    assert_problem(await deal.fund(1), 409)
    # evidence from both; the developer's is the response
    proof = await upload(deal, deal.dev, "proof.png")
    url = f"{API}/disputes/{dispute['id']}"
    answered = await ok(
        await app.client.post(
            f"{url}/evidence",
            headers=deal.dev.auth,
            json={"message": "It matches; see the screenshot.", "files": [proof["id"]]},
        ),
        201,
    )
    assert answered["responded_at"]
    assert_problem(await app.client.post(f"{url}/evidence", headers=deal.owner.auth, json={}), 409)
    # the admin API is forbidden to the parties; a stranger sees nothing
    resolve = f"{API}/admin/disputes/{dispute['id']}/resolve"
    assert_problem(
        await app.client.post(
            resolve, headers=deal.owner.auth, json={"developer_amount": 40_000, "note": "Mine"}
        ),
        403,
    )
    assert_problem(await app.client.get(f"{API}/admin/disputes", headers=deal.owner.auth), 403)
    stranger = await client(app, "Stranger")
    assert_problem(await app.client.get(url, headers=stranger.auth), 404)
    assert_problem(
        await app.client.post(f"{url}/evidence", headers=stranger.auth, json={"message": "x"}), 404
    )
    admin = await make_admin(app, "root@example.com")
    listed = await ok(await app.client.get(f"{API}/admin/disputes?status=open", headers=admin.auth))
    assert [d["id"] for d in listed["items"]] == [dispute["id"]]
    assert (await ok(await app.client.get(f"{API}/admin/disputes?status=resolved", headers=admin.auth)))[
        "items"
    ] == []
    own = await ok(await app.client.get(f"{API}/disputes", headers=deal.dev.auth))
    assert [d["id"] for d in own["items"]] == [dispute["id"]]
    assert (await ok(await app.client.get(f"{API}/disputes", headers=stranger.auth)))["items"] == []
    seen = await ok(await app.client.get(url, headers=admin.auth))
    evidence_file = seen["evidence"][1]["files"][0]
    assert (await app.client.get(evidence_file["url"], headers=admin.auth)).content == png_bytes()
    assert_problem(
        await app.client.post(
            resolve, headers=admin.auth, json={"developer_amount": 40_001, "note": "Too much"}
        ),
        409,
    )
    before = await deal.balances()
    resolved = await ok(
        await app.client.post(
            resolve,
            headers=admin.auth,
            json={"developer_amount": 24_000, "note": "The brief was met in part."},
        )
    )
    assert resolved["status"] == "resolved"
    assert resolved["outcome"] == "split"
    assert resolved["developer_amount"] == 24_000
    after = await deal.balances()
    assert after["escrow"] - before["escrow"] == -40_000
    assert after["pending"] - before["pending"] == 24_000 - 2_400  # less the 10% fee
    assert after["revenue"] - before["revenue"] == 2_400
    assert after["client_funding"] == 0  # the 16,000 refund went back through the gateway
    milestone = await deal.milestone()
    assert milestone["status"] == "approved"
    assert (milestone["released"], milestone["refunded"]) == (24_000, 16_000)
    assert (await contract(deal))["status"] == "active"

    async def refunds() -> list[int]:
        from sqlalchemy import select

        async with app.site.db.reading() as session:
            return list(
                await session.scalars(select(Payment.amount).where(Payment.kind == PaymentKind.REFUND))
            )

    assert await app.on_loop(refunds) == [16_000]
    assert_problem(
        await app.client.post(resolve, headers=admin.auth, json={"developer_amount": 0, "note": "Again"}),
        409,
    )
    kinds = [s["kind"] for s in await timeline(deal, deal.owner)]
    assert kinds[-4:] == [
        "milestone.disputed",
        "dispute.evidence_added",
        "payment.released",
        "milestone.settled",
    ]
    assert await deal.problems() == []
    # the contract goes on
    await ok(await deal.fund(1))


async def test_without_a_response_the_opener_wins_by_default(app: App) -> None:
    deal = await hire(app)
    await ok(await deal.fund(0))
    await ok(await deal.act(deal.dev, 0, "submit", {"note": "Done"}))
    dispute = await open_dispute(deal, deal.dev)  # the developer says the client went silent
    await deal.run_timers(days=4)
    assert (await deal.milestone())["status"] == "disputed"
    await deal.run_timers(days=6)
    url = f"{API}/disputes/{dispute['id']}"
    decided = await ok(await app.client.get(url, headers=deal.dev.auth))
    assert decided["outcome"] == "default"
    assert decided["developer_amount"] == 40_000
    assert (await deal.milestone())["status"] == "approved"
    balances = await deal.balances()
    assert balances["pending"] + balances["available"] == 36_000  # the hold may be over already
    assert await deal.problems() == []


async def test_a_client_who_opens_and_gets_no_response_is_refunded(app: App) -> None:
    deal = await hire(app)
    await ok(await deal.fund(0))
    await open_dispute(deal, deal.owner)
    await deal.run_timers(days=6)
    milestone = await deal.milestone()
    assert milestone["status"] == "cancelled"
    assert milestone["refunded"] == 40_000
    balances = await deal.balances()
    assert balances["escrow"] == 0
    assert balances["client_funding"] == 0
    assert await deal.problems() == []


async def test_a_response_stops_the_default(app: App) -> None:
    deal = await hire(app)
    await ok(await deal.fund(0))
    dispute = await open_dispute(deal, deal.owner)
    await ok(
        await app.client.post(
            f"{API}/disputes/{dispute['id']}/evidence",
            headers=deal.dev.auth,
            json={"message": "I delivered on time."},
        ),
        201,
    )
    await deal.run_timers(days=30)
    assert (await deal.milestone())["status"] == "disputed"


async def test_only_money_in_escrow_can_be_disputed(app: App) -> None:
    deal = await hire(app)
    assert_problem(await deal.act(deal.owner, 0, "dispute", {"reason": "Nothing paid yet at all."}), 409)
    await ok(await deal.fund(0))
    assert_problem(await deal.act(deal.owner, 0, "dispute", {"reason": "short"}), 400)
    stranger = await client(app, "Stranger")
    assert_problem(await deal.act(stranger, 0, "dispute", {"reason": "Not my contract at all."}), 404)
    await ok(await deal.act(deal.owner, 0, "approve"))
    assert_problem(await deal.act(deal.owner, 0, "dispute", {"reason": "Too late to dispute it."}), 409)


async def test_racing_resolutions_and_approvals_settle_a_dispute_once(apps: Apps) -> None:
    """Two instances: admins resolving the same dispute 20 times at once, while the client tries
    to approve it and the developer to open a second one: one split, nothing else moves."""
    settings = await market_settings(apps)
    a = await open_market(apps, settings=settings)
    b = await open_market(apps, settings=settings)
    deal = await hire(a)
    await ok(await deal.fund(0))
    dispute = await open_dispute(deal, deal.owner)
    admin = await make_admin(a, "root@example.com")
    resolve = f"{API}/admin/disputes/{dispute['id']}/resolve"
    requests: list[Any] = [
        (
            a if n % 2 else b,
            "POST",
            resolve,
            admin.auth,
            {"developer_amount": 1_000 * (n + 1), "note": f"Split {n}"},
        )
        for n in range(20)
    ]
    requests += [
        (a, "POST", deal.url(0, "approve"), deal.owner.auth, None),
        (b, "POST", deal.url(0, "dispute"), deal.dev.auth, {"reason": "A second dispute, at once."}),
    ]
    answers = await send_concurrently(*requests)
    statuses = [status for status, _ in answers]
    assert statuses[:20].count(200) == 1, statuses
    assert set(statuses[:20]) <= {200, 409}
    assert statuses[20:] == [409, 409]
    winner = next(body for status, body in answers[:20] if status == 200)
    paid = winner["developer_amount"]
    balances = await deal.balances()
    assert balances["escrow"] == 0
    assert balances["pending"] == paid - paid // 10
    milestone = await deal.milestone()
    assert (milestone["released"], milestone["refunded"]) == (paid, 40_000 - paid)
    assert await deal.problems() == []


async def test_a_refund_begun_by_a_process_that_died_is_still_sent(app: App) -> None:
    """The cancel commits, then the process dies before telling the gateway: the sweeper sends the
    refund; and a check that finds the gateway never heard of it sends it again, never gives up."""
    deal = await hire(app)
    await ok(await deal.fund(0))
    service = MilestoneService(app.site)
    milestone_id, dev_id = uuid.UUID(deal.milestones[0]["id"]), uuid.UUID(deal.dev.id)

    async def cancel_and_die() -> None:
        async with app.site.db.transaction() as session:
            await service.cancel(session, milestone_id, dev_id)
            await session.flush()
            # the send timer is lost too (a sweeper took it and died): only the check is left
            await session.execute(sa.delete(Timer).where(Timer.kind == REFUND_SEND))

    await app.on_loop(cancel_and_die)
    assert (await deal.balances())["client_funding"] == 40_000  # owed, not yet sent
    await deal.run_timers(days=1)  # the check: unknown at the gateway, so it is sent
    balances = await deal.balances()
    assert balances["client_funding"] == 0
    assert balances["gateway"] == 0
    assert await deal.problems() == []
