"""The admin plugin and core moderation over HTTP: access (401/403), audit rows, suspension
that locks a person out at once, reports and what hiding does, listing approval, and site
settings validated, applied to the next release and seen by a second instance."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from mercato.core.moderation.models import AuditEntry, Report
from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_api import API, App, Apps, assert_problem
from tests.integration.test_accounts_security import Browser, make_admin
from tests.integration.test_listings import service_body
from tests.integration.test_milestones import hire
from tests.marketplace_helpers import client, developer, market_settings, open_market, post_project


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


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def audit_rows(app: App, action: str) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        async with app.site.db.reading() as session:
            rows = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
            for row in rows:
                session.expunge(row)
            return rows

    return await app.on_loop(read)


async def published_service(app: App, dev: Any, **changes: Any) -> dict[str, Any]:
    return await ok(
        await app.client.post(
            f"{API}/services", headers=dev.auth, json=service_body(publish=True, **changes)
        ),
        201,
    )


async def wait_until(check: Any, within: float = 10.0) -> None:
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > within:
            pytest.fail("not true in time")
        await asyncio.sleep(0.1)


ADMIN_GETS = [
    "/admin/stats",
    "/admin/users",
    "/admin/reports",
    "/admin/listings",
    "/admin/settings",
    "/admin/audit",
]
ADMIN_PAGES = [
    "/admin",
    "/admin/users",
    "/admin/reports",
    "/admin/listings",
    "/admin/settings",
    "/admin/audit",
]


async def test_admin_routes_are_401_signed_out_403_without_the_role_and_200_for_admins(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    buyer, dev = await client(app), await developer(app)
    for path in [*ADMIN_GETS, f"/admin/users/{dev.id}"]:
        assert_problem(await app.client.get(f"{API}{path}"), 401)
        for who in (buyer, dev):
            assert_problem(await app.client.get(f"{API}{path}", headers=who.auth), 403)
        await ok(await app.client.get(f"{API}{path}", headers=admin.auth))
    for path, body in (
        (f"/admin/users/{dev.id}/verify", None),
        (f"/admin/users/{dev.id}/roles", {"roles": []}),
        ("/admin/settings", {}),
    ):
        method = "PUT" if path.endswith(("roles", "settings")) else "POST"
        assert_problem(await app.client.request(method, f"{API}{path}", headers=dev.auth, json=body), 403)
    # pages: signed out → login; others → a 403 page; admins → the page
    anonymous, dev_browser = await Browser.anonymous(app), await Browser.signed_in(app, dev.email)
    admin_browser = await Browser.signed_in(app, admin.email)
    for path in ADMIN_PAGES:
        out = await anonymous.request("GET", path, headers={"Accept": "text/html"})
        assert out.status_code == 303, path
        assert out.headers["location"].startswith("/login"), path
        assert (await dev_browser.request("GET", path, headers={"Accept": "text/html"})).status_code == 403, (
            path
        )
        page = await admin_browser.request("GET", path, headers={"Accept": "text/html"})
        assert page.status_code == 200, path
        assert 'href="/admin/disputes"' in page.text, "the disputes queue is in the admin navigation"
    home = await admin_browser.request("GET", "/", headers={"Accept": "text/html"})
    assert 'data-nav-key="admin"' in home.text
    assert 'data-nav-key="admin"' not in (await dev_browser.request("GET", "/")).text


async def test_dashboard_counts_signups_and_money_from_the_ledger(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    deal = await hire(app)
    await ok(await deal.fund(0))
    await ok(await deal.act(deal.dev, 0, "submit", {"note": "Done"}))
    await ok(await deal.act(deal.owner, 0, "approve"))
    await ok(await deal.fund(1))
    await ok(await deal.act(deal.owner, 1, "dispute", {"reason": "The build does not start."}), 201)
    stats = await ok(await app.client.get(f"{API}/admin/stats", headers=admin.auth))
    assert stats["open_disputes"] == 1
    assert stats["signups_30d"] == 3
    assert stats["active_contracts"] == 1
    assert stats["gross_volume"] == {"USD": 100_000}
    assert stats["platform_revenue"] == {"USD": 4_000}, "10 % of the released 400.00"
    assert stats["take_rate_percent"] == {"USD": 4.0}
    assert stats["median_hours_to_first_proposal"] is not None
    daily = {s["name"]: s for s in stats["daily"]}
    assert len(daily["Signups"]["points"]) == 30
    assert daily["Signups"]["points"][-1]["value"] == 3
    assert daily["Funded (USD)"]["points"][-1]["value"] == 100_000
    assert len(stats["weekly"][0]["points"]) == 12
    page = await (await Browser.signed_in(app, admin.email)).request("GET", "/admin")
    assert page.text.count('<svg class="admin-chart"') == 4
    assert "$1,000" in page.text
    assert "$40" in page.text


async def test_suspension_locks_the_person_out_at_once_and_is_audited(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    eve = await developer(app, "Eve")
    eve_browser = await Browser.signed_in(app, eve.email)
    assert (await eve_browser.request("GET", "/settings/profile")).status_code == 200
    admin_browser = await Browser.signed_in(app, admin.email)
    suspended = await admin_browser.request(
        "POST",
        f"/admin/users/{eve.id}",
        data={"action": "suspend", "reason": "Off-platform payments", "csrf_token": admin_browser.csrf()},
    )
    assert suspended.status_code == 303
    assert_problem(await app.client.get(f"{API}/me", headers=eve.auth), 401)
    gone = await eve_browser.request("GET", "/settings/profile", headers={"Accept": "text/html"})
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/login")
    [row] = await audit_rows(app, "user.suspend")
    assert row.actor_id == uuid.UUID(admin.id)
    assert row.subject_id == eve.id
    assert row.reason == "Off-platform payments"
    person = await ok(await app.client.get(f"{API}/admin/users/{eve.id}", headers=admin.auth))
    assert person["status"] == "suspended"
    await ok(await app.client.post(f"{API}/admin/users/{eve.id}/reinstate", headers=admin.auth))
    assert len(await audit_rows(app, "user.reinstate")) == 1
    found = await ok(await app.client.get(f"{API}/admin/users", headers=admin.auth, params={"q": "eve"}))
    assert [u["id"] for u in found["items"]] == [eve.id]


async def test_verify_and_roles_are_audited_and_an_admin_keeps_their_own_role(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    bob = await client(app, "Bob")
    verified = await ok(await app.client.post(f"{API}/admin/users/{bob.id}/verify", headers=admin.auth))
    assert verified["email_verified"] is True
    assert_problem(await app.client.post(f"{API}/admin/users/{bob.id}/verify", headers=admin.auth), 409)
    roles = await ok(
        await app.client.put(
            f"{API}/admin/users/{bob.id}/roles", headers=admin.auth, json={"roles": ["client", "developer"]}
        )
    )
    assert roles["roles"] == ["client", "developer"]
    assert_problem(
        await app.client.put(
            f"{API}/admin/users/{admin.id}/roles", headers=admin.auth, json={"roles": ["client"]}
        ),
        400,
        field="roles",
    )
    assert len(await audit_rows(app, "user.verify")) == 1
    [row] = await audit_rows(app, "user.roles")
    assert row.data == {"before": ["client"], "after": ["client", "developer"]}
    audit = await ok(
        await app.client.get(f"{API}/admin/audit", headers=admin.auth, params={"action": "user."})
    )
    assert {e["action"] for e in audit["items"]} == {"user.verify", "user.roles"}


async def test_reports_hide_content_publicly_and_in_search(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    dev, reporter = await developer(app, "Dev"), await client(app, "Reporter")
    service = await published_service(app, dev, title="I will build a scam landing page")

    async def findable() -> bool:
        found = await app.client.get(f"{API}/search", params={"q": "scam landing", "type": "services"})
        return service["id"] in [item["id"] for item in found.json()["items"]]

    await wait_until(findable)
    body = {
        "subject_type": "listing",
        "subject_id": service["id"],
        "reason": "scam",
        "details": "Asks for wire",
    }
    assert_problem(await app.client.post(f"{API}/reports", json=body), 401)
    assert_problem(
        await app.client.post(f"{API}/reports", headers=dev.auth, json=body), 400, field="subject_id"
    )
    hidden_draft = await ok(
        await app.client.post(f"{API}/services", headers=dev.auth, json=service_body()), 201
    )
    assert_problem(
        await app.client.post(
            f"{API}/reports", headers=reporter.auth, json={**body, "subject_id": hidden_draft["id"]}
        ),
        404,
    )
    assert_problem(
        await app.client.post(
            f"{API}/reports", headers=reporter.auth, json={**body, "subject_type": "planet"}
        ),
        400,
        field="subject_type",
    )
    report = await ok(await app.client.post(f"{API}/reports", headers=reporter.auth, json=body), 201)
    assert report["status"] == "open"
    assert_problem(await app.client.post(f"{API}/reports", headers=reporter.auth, json=body), 409)

    queue = await ok(await app.client.get(f"{API}/admin/reports", headers=admin.auth))
    [item] = queue["items"]
    assert item["title"] == "I will build a scam landing page"
    assert item["url"] == f"/services/{service['id']}"
    decided = await ok(
        await app.client.post(
            f"{API}/admin/reports/{report['id']}/decide",
            headers=admin.auth,
            json={"action": "hide", "note": "Off-platform payment"},
        )
    )
    assert decided["status"] == "hidden"
    assert decided["hidden"] is True
    assert_problem(
        await app.client.post(
            f"{API}/admin/reports/{report['id']}/decide", headers=admin.auth, json={"action": "dismiss"}
        ),
        409,
    )
    assert_problem(await app.client.get(f"{API}/services/{service['id']}"), 404)
    assert (await app.client.get(f"/services/{service['id']}")).status_code == 404
    own = await ok(await app.client.get(f"{API}/services/{service['id']}", headers=dev.auth))
    assert own["hidden"] is True
    dev_page = await (await Browser.signed_in(app, dev.email)).request("GET", f"/services/{service['id']}")
    assert "hidden by moderators" in dev_page.text
    browse = await ok(await app.client.get(f"{API}/services"))
    assert service["id"] not in [s["id"] for s in browse["items"]]

    async def gone_from_search() -> bool:
        return not await findable()

    await wait_until(gone_from_search)
    [row] = await audit_rows(app, "report.hide")
    assert row.subject_id == service["id"]
    assert row.reason == "Off-platform payment"

    # A mistake: the admin shows it again; it is public and findable, the report dismissed.
    assert_problem(await app.client.post(
        f"{API}/admin/reports/{report['id']}/decide", headers=reporter.auth, json={"action": "restore"}), 403)
    restored = await ok(await app.client.post(
        f"{API}/admin/reports/{report['id']}/decide", headers=admin.auth,
        json={"action": "restore", "note": "The developer explained"}))
    assert (restored["status"], restored["hidden"]) == ("dismissed", False)
    assert (await app.client.get(f"{API}/services/{service['id']}")).status_code == 200
    await wait_until(findable)
    [shown] = await audit_rows(app, "content.restore")
    assert (shown.subject_id, shown.reason) == (service["id"], "The developer explained")
    assert_problem(await app.client.post(
        f"{API}/admin/reports/{report['id']}/decide", headers=admin.auth, json={"action": "restore"}), 409)


async def test_dismiss_and_suspend_decisions(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    owner, reporter = await client(app, "Owner"), await client(app, "Reporter")
    project = await post_project(app, owner)
    profile_report = await ok(
        await app.client.post(
            f"{API}/reports",
            headers=reporter.auth,
            json={"subject_type": "profile", "subject_id": owner.id, "reason": "other"},
        ),
        201,
    )
    await ok(
        await app.client.post(
            f"{API}/admin/reports/{profile_report['id']}/decide",
            headers=admin.auth,
            json={"action": "dismiss"},
        )
    )
    assert (await ok(await app.client.get(f"{API}/users/{owner.id}")))["hidden"] is False
    project_report = await ok(
        await app.client.post(
            f"{API}/reports",
            headers=reporter.auth,
            json={"subject_type": "project", "subject_id": project["id"], "reason": "abusive"},
        ),
        201,
    )
    await ok(
        await app.client.post(
            f"{API}/admin/reports/{project_report['id']}/decide",
            headers=admin.auth,
            json={"action": "suspend", "note": "Abuse"},
        )
    )
    assert_problem(await app.client.get(f"{API}/projects/{project['id']}"), 404)
    assert_problem(await app.client.get(f"{API}/me", headers=owner.auth), 401)
    assert len(await audit_rows(app, "report.suspend")) == 1
    assert len(await audit_rows(app, "user.suspend")) == 1
    assert len(await audit_rows(app, "report.dismiss")) == 1
    dismissed = await ok(
        await app.client.get(f"{API}/admin/reports", headers=admin.auth, params={"status": "dismissed"})
    )
    assert [r["id"] for r in dismissed["items"]] == [profile_report["id"]]


async def test_a_hidden_profile_shows_only_the_name(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    dev, reporter = await developer(app, "Dev"), await client(app, "Reporter")
    await ok(await app.client.patch(f"{API}/me", headers=dev.auth, json={"headline": "Buy followers cheap"}))
    report = await ok(
        await app.client.post(
            f"{API}/reports",
            headers=reporter.auth,
            json={"subject_type": "profile", "subject_id": dev.id, "reason": "spam"},
        ),
        201,
    )
    await ok(
        await app.client.post(
            f"{API}/admin/reports/{report['id']}/decide", headers=admin.auth, json={"action": "hide"}
        )
    )
    public = await ok(await app.client.get(f"{API}/users/{dev.id}"))
    assert public["hidden"] is True
    assert public["profile"]["headline"] == ""
    assert public["display_name"] == "Dev"
    page = await app.client.get(f"/users/{dev.id}")
    assert "hidden by moderators" in page.text
    assert "Buy followers" not in page.text


async def test_listing_approval_when_required(apps: Apps) -> None:
    app = await apps.open(await market_settings(apps))
    admin = await make_admin(app, "root@example.com")
    await ok(
        await app.client.put(
            f"{API}/admin/settings", headers=admin.auth, json={"moderation.require_listing_approval": True}
        )
    )
    dev = await developer(app, "Dev")
    pending = await published_service(app, dev)
    assert pending["status"] == "pending_approval"
    assert_problem(await app.client.get(f"{API}/services/{pending['id']}"), 404)
    queue = await ok(await app.client.get(f"{API}/admin/listings", headers=admin.auth))
    assert [x["id"] for x in queue["items"]] == [pending["id"]]
    rejected = await ok(
        await app.client.post(
            f"{API}/admin/listings/{pending['id']}/reject",
            headers=admin.auth,
            json={"reason": "Add a real portfolio link"},
        )
    )
    assert rejected["status"] == "draft"
    own = await ok(await app.client.get(f"{API}/services/{pending['id']}", headers=dev.auth))
    assert own["rejection_reason"] == "Add a real portfolio link"
    again = await ok(await app.client.post(f"{API}/services/{pending['id']}/publish", headers=dev.auth))
    assert again["status"] == "pending_approval"
    approved = await ok(
        await app.client.post(f"{API}/admin/listings/{pending['id']}/approve", headers=admin.auth)
    )
    assert approved["status"] == "published"
    assert_problem(
        await app.client.post(f"{API}/admin/listings/{pending['id']}/approve", headers=admin.auth), 409
    )
    await ok(await app.client.get(f"{API}/services/{pending['id']}"))
    assert len(await audit_rows(app, "listing.reject")) == 1
    assert len(await audit_rows(app, "listing.approve")) == 1


async def test_settings_are_validated_audited_applied_and_reach_a_second_instance(apps: Apps) -> None:
    settings = await market_settings(apps)
    a = await open_market(apps, settings=settings)
    b = await open_market(apps, settings=settings)
    admin = await make_admin(a, "root@example.com")
    url = f"{API}/admin/settings"
    for bad, field in (
        ({"payments.developer_fee_percent": 80}, "payments.developer_fee_percent"),
        ({"payments.auto_approve_days": 0}, "payments.auto_approve_days"),
        ({"payments.payout_hold_days": "soon"}, "payments.payout_hold_days"),
        ({"payments.min_payout": 1}, "payments.min_payout"),
    ):
        assert_problem(await a.client.put(url, headers=admin.auth, json=bad), 400, field=field)
    listed = {s["key"]: s for s in (await ok(await a.client.get(url, headers=admin.auth)))["items"]}
    assert listed["payments.developer_fee_percent"]["value"] == 10.0
    changed = await ok(
        await a.client.put(url, headers=admin.auth, json={"payments.developer_fee_percent": 20})
    )
    assert {s["key"]: s["value"] for s in changed["items"]}["payments.developer_fee_percent"] == 20.0
    [row] = await audit_rows(a, "settings.update")
    assert row.subject_id == "payments.developer_fee_percent"
    assert row.data["after"] == 20.0

    async def b_sees_it() -> bool:
        return bool(b.site.settings.payments.developer_fee_percent == 20.0)

    await wait_until(b_sees_it, within=5)
    # the next release on instance B takes 20 %
    deal = await hire(b)
    await ok(await deal.fund(0))
    await ok(await deal.act(deal.dev, 0, "submit", {"note": "Done"}))
    await ok(await deal.act(deal.owner, 0, "approve"))
    assert (await deal.balances())["revenue"] == 8_000
    # back to the file's value
    await ok(await a.client.put(url, headers=admin.auth, json={"payments.developer_fee_percent": None}))

    async def b_back() -> bool:
        return bool(b.site.settings.payments.developer_fee_percent == 10.0)

    await wait_until(b_back, within=5)
    assert len(await audit_rows(a, "settings.update")) == 2


async def test_timers_started_before_a_change_use_the_new_hold_and_auto_approval(app: App) -> None:
    """Timer handlers keep one milestone service for the process's life; it reads the
    settings at each use, so an admin's change applies to the next auto-approval and hold."""
    from mercato.core.contracts.milestones import MilestoneService

    service = MilestoneService(app.site)  # as the timer handlers hold it since start
    admin = await make_admin(app, "root@example.com")
    await ok(await app.client.put(f"{API}/admin/settings", headers=admin.auth,
                                  json={"payments.payout_hold_days": 2, "payments.auto_approve_days": 3}))
    assert (service.settings.payout_hold_days, service.settings.auto_approve_days) == (2, 3)


async def test_reports_are_rate_limited_and_stored_once_per_reporter(app: App) -> None:
    reporter = await client(app, "Reporter")
    targets = [await client(app, f"T{i}") for i in range(3)]
    for target in targets:
        await ok(
            await app.client.post(
                f"{API}/reports",
                headers=reporter.auth,
                json={"subject_type": "profile", "subject_id": target.id, "reason": "spam"},
            ),
            201,
        )

    async def count() -> int:
        async with app.site.db.reading() as session:
            return len(list(await session.scalars(select(Report))))

    assert await app.on_loop(count) == 3
