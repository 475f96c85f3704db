"""Notifications: domain events become notifications for the right people (never for the one who
acted), once each even when an event comes again; the API to list and mark them read; the
preferences per category and channel; e-mail one by one or as a daily digest with a working
unsubscribe link; the bell's count on the pages."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from mercato import hookimpl
from mercato.core.events import Event
from mercato.plugins.notifications.models import Notification
from mercato.plugins.notifications.service import Notifications
from tests.conftest import Databases, MakeSettings
from tests.e2e.conftest import LiveServer
from tests.integration.test_accounts_security import Browser
from tests.integration.test_milestones import hire
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


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def inbox(app: App, who: Person, count: int, **params: Any) -> dict[str, Any]:
    """``who``'s notifications once there are ``count`` (event handlers run a moment after)."""

    async def look() -> dict[str, Any] | None:
        page = await app.client.get(f"{API}/notifications", headers=who.auth, params=params)
        assert page.status_code == 200, page.text
        body: dict[str, Any] = page.json()
        return body if len(body["items"]) >= count else None

    found = await eventually(look)
    assert found is not None, f"{who.email} never got {count} notifications"
    assert len(found["items"]) == count, [n["title"] for n in found["items"]]
    return found


async def test_a_hire_and_its_money_notify_the_other_party_only(app: App) -> None:
    owner, dev = await client(app), await developer(app)
    project = await post_project(app, owner, title="Invoice API")
    proposal = await bid(app, dev, project)
    got = await inbox(app, owner, 1)
    assert got["items"][0]["title"] == "New proposal on “Invoice API”"
    assert got["items"][0]["url"] == f"/projects/{project['id']}#proposals"
    assert got["unread"] == 1
    accepted = await app.client.post(f"{API}/proposals/{proposal['id']}/accept", headers=owner.auth)
    assert accepted.status_code == 200
    got = await inbox(app, dev, 1)
    assert got["items"][0]["title"] == "You are hired for “Invoice API”"
    contract = (
        await app.client.get(f"{API}/contracts/{accepted.json()['contract_id']}", headers=owner.auth)
    ).json()
    milestone = contract["milestones"][0]["id"]
    funded = await app.client.post(
        f"{API}/milestones/{milestone}/fund", headers=owner.auth, json={"payment_method": "4242424242424242"}
    )
    assert funded.status_code == 200, funded.text
    got = await inbox(app, dev, 2)
    assert got["items"][0]["title"].startswith(f"“{contract['milestones'][0]['title']}” is funded")
    # the owner acted: nothing new for them
    assert (await inbox(app, owner, 1))["unread"] == 1


async def test_reading_marks_and_someone_elses_is_a_404(app: App) -> None:
    deal = await hire(app)
    await deal.fund(0)
    await deal.act(deal.dev, 0, "submit", {"note": "Done, see staging."})
    got = await inbox(app, deal.owner, 2, unread="true")  # the proposal, and the submission
    item = next(n for n in got["items"] if n["kind"] == "milestone.submitted")
    assert item["title"] == f"“{deal.milestones[0]['title']}” was submitted for your review"
    assert item["body"] == "Done, see staging."
    stranger = await client(app, "Stranger")
    mark = f"{API}/notifications/{item['id']}/read"
    assert_problem(await app.client.post(mark, headers=stranger.auth), 404)
    assert (await app.client.post(mark, headers=deal.owner.auth)).status_code == 204
    after = (await app.client.get(f"{API}/notifications", headers=deal.owner.auth)).json()
    assert after["unread"] == 1
    assert {n["kind"]: n["read"] for n in after["items"]} == {
        "milestone.submitted": True,
        "proposal.submitted": False,
    }
    unread = (await app.client.get(f"{API}/notifications?unread=true", headers=deal.owner.auth)).json()
    assert [n["kind"] for n in unread["items"]] == ["proposal.submitted"]
    await deal.act(deal.owner, 0, "approve")
    await inbox(app, deal.dev, 4)  # hired, funded, approved, payment released
    assert (await app.client.post(f"{API}/notifications/read-all", headers=deal.dev.auth)).status_code == 204
    assert (await app.client.get(f"{API}/notifications", headers=deal.dev.auth)).json()["unread"] == 0


async def test_an_event_handled_twice_notifies_once(app: App) -> None:
    deal = await hire(app)
    await deal.fund(0)
    await inbox(app, deal.dev, 2)  # hired, funded
    event = Event(
        type="milestone.submitted",
        actor_id=uuid.UUID(deal.dev.id),
        payload={
            "milestone_id": deal.milestones[0]["id"],
            "contract_id": deal.contract["id"],
            "client_id": deal.owner.id,
            "developer_id": deal.dev.id,
            "amount": 40_000,
            "currency": "USD",
            "note": "again",
        },
    )
    service = Notifications(app.site)

    async def handle_twice() -> int:
        for _ in range(2):
            async with app.site.db.transaction() as session:
                await service.handle(event, session)
        async with app.site.db.reading() as session:
            from sqlalchemy import func, select

            return int(
                await session.scalar(select(func.count()).where(Notification.event_id == event.id)) or 0
            )

    assert await app.on_loop(handle_twice) == 1


async def test_preferences_turn_channels_off_and_email_follows_them(app: App) -> None:
    deal = await hire(app)
    url = f"{API}/me/notification-preferences"
    prefs = (await app.client.get(url, headers=deal.dev.auth)).json()
    assert [c["category"] for c in prefs["categories"]] == [
        "projects",
        "contracts",
        "payments",
        "disputes",
        "messages",
    ]
    assert {c["channel"]: c["enabled"] for c in prefs["categories"][1]["channels"]} == {
        "in_app": True,
        "email": True,
    }
    bad = await app.client.put(
        url,
        headers=deal.dev.auth,
        json={"choices": [{"category": "weather", "channel": "email", "enabled": True}]},
    )
    assert_problem(bad, 400, field="choices[0].category")
    off = await app.client.put(
        url,
        headers=deal.dev.auth,
        json={"choices": [{"category": "contracts", "channel": "email", "enabled": False}]},
    )
    assert off.status_code == 200, off.text
    await deal.fund(0)
    await inbox(app, deal.dev, 2)  # hired, funded
    await deal.run_timers(days=0.001)
    assert [m.subject for m in app.mails_to(deal.dev.email) if "funded" in m.subject] == []
    # in-app off: no notification at all
    await app.client.put(
        url,
        headers=deal.dev.auth,
        json={"choices": [{"category": "contracts", "channel": "in_app", "enabled": False}]},
    )
    await deal.fund(1)
    await asyncio.sleep(1.0)
    assert len((await app.client.get(f"{API}/notifications", headers=deal.dev.auth)).json()["items"]) == 2


async def test_email_one_by_one_then_a_digest_and_unsubscribe(app: App) -> None:
    deal = await hire(app)
    await deal.fund(0)
    await inbox(app, deal.dev, 2)  # hired, funded
    await deal.run_timers(days=0.001)
    mails = [m for m in app.mails_to(deal.dev.email) if "is funded" in m.subject]
    assert len(mails) == 1
    mail = mails[0]
    assert f"/contracts/{deal.contract['id']}#milestone-" in mail.text
    unsubscribe = re.search(r"(http\S+/notifications/unsubscribe\?token=\S+)", mail.text)
    assert unsubscribe, mail.text
    # the digest: contracts by e-mail once a day
    await app.client.put(
        f"{API}/me/notification-preferences",
        headers=deal.dev.auth,
        json={"choices": [{"category": "contracts", "channel": "email", "enabled": True, "digest": True}]},
    )
    await deal.act(deal.owner, 0, "approve")
    await inbox(app, deal.dev, 4)
    await deal.run_timers(days=0.001)
    assert [m.subject for m in app.mails_to(deal.dev.email) if "digest:" in m.subject] == []
    await deal.run_timers(days=1.01)
    digests = [m for m in app.mails_to(deal.dev.email) if "digest:" in m.subject]
    assert len(digests) == 1, [m.subject for m in app.mails_to(deal.dev.email)]
    assert "was approved" in digests[0].text
    await deal.run_timers(days=2.01)  # nothing left: no second digest
    assert len([m for m in app.mails_to(deal.dev.email) if "digest:" in m.subject]) == 1
    # one click (what mail clients POST), no log-in
    token = unsubscribe.group(1).split("token=")[1]
    assert_problem(await app.client.post(f"{API}/notifications/unsubscribe?token=forged"), 400)
    done = await app.client.post(f"{API}/notifications/unsubscribe?token={token}")
    assert done.status_code == 204, done.text
    prefs = (await app.client.get(f"{API}/me/notification-preferences", headers=deal.dev.auth)).json()
    contracts = {c["channel"]: c["enabled"] for c in prefs["categories"][1]["channels"]}
    assert contracts["email"] is False


async def test_the_bell_counts_unread_and_the_pages_open_and_mark_them(app: App) -> None:
    deal = await hire(app)
    await deal.fund(0)
    await inbox(app, deal.dev, 2)  # hired, funded
    browser = await Browser.signed_in(app, deal.dev.email)
    page = await browser.request("GET", "/dashboard", headers={"Accept": "text/html"})
    assert re.search(r"data-unread>\s*2\s*<", page.text), page.text[:2000]
    listing = await browser.request("GET", "/notifications", headers={"Accept": "text/html"})
    found = re.search(r'href="(/notifications/[0-9a-f-]+/open)"', listing.text)
    assert found
    opened = await browser.request("GET", found.group(1))
    assert opened.status_code == 303
    assert opened.headers["location"].startswith(f"/contracts/{deal.contract['id']}")
    page = await browser.request("GET", "/dashboard", headers={"Accept": "text/html"})
    assert re.search(r"data-unread>\s*1\s*<", page.text)
    settings = await browser.request("GET", "/settings/notifications", headers={"Accept": "text/html"})
    assert settings.status_code == 200
    saved = await browser.request(
        "POST",
        "/settings/notifications",
        data={
            "csrf_token": browser.csrf(),
            "on": ["contracts:in_app", "payments:email"],
            "digest": ["payments:email"],
        },
    )
    assert saved.status_code == 303
    prefs = (await app.client.get(f"{API}/me/notification-preferences", headers=deal.dev.auth)).json()
    payments = {c["channel"]: (c["enabled"], c["digest"]) for c in prefs["categories"][2]["channels"]}
    assert payments == {"in_app": (False, False), "email": (True, True)}


async def test_the_unsubscribe_page_asks_then_stops_the_mails(app: App) -> None:
    deal = await hire(app)
    service = Notifications(app.site)
    parts = urlsplit(service.unsubscribe_url(uuid.UUID(deal.dev.id), "email", "payments"))
    path = f"{parts.path}?{parts.query}"
    anonymous = await Browser.anonymous(app)
    page = await anonymous.request("GET", path, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "Unsubscribe?" in page.text
    token = path.split("token=")[1]
    done = await anonymous.request(
        "POST", "/notifications/unsubscribe", data={"csrf_token": anonymous.csrf(), "token": token}
    )
    assert "You are unsubscribed" in done.text
    bad = await anonymous.request(
        "GET", "/notifications/unsubscribe?token=nope", headers={"Accept": "text/html"}
    )
    assert bad.status_code == 400
    prefs = (await app.client.get(f"{API}/me/notification-preferences", headers=deal.dev.auth)).json()
    assert {c["channel"]: c["enabled"] for c in prefs["categories"][2]["channels"]}["email"] is False


class Recorder:
    """A channel a plugin adds: it keeps what it was asked to deliver."""

    id, label, default_enabled, digest = "recorder", "Recorder", True, False

    def __init__(self) -> None:
        self.delivered: list[tuple[str, list[str]]] = []

    async def deliver(self, site: Any, recipient: Any, items: list[Any], *, digest: bool = False) -> None:
        self.delivered.append((recipient.email, [item.title for item in items]))


class RecorderPlugin:
    def __init__(self, channel: Recorder) -> None:
        self.channel = channel

    @hookimpl
    def register_notification_channels(self, site: Any) -> list[Any]:
        return [self.channel]


async def test_a_plugins_channel_delivers_each_notification_once(apps: Apps) -> None:
    channel = Recorder()
    app = await apps.open(await market_settings(apps), extra=[("recorder", RecorderPlugin(channel))])
    deal = await hire(app)
    await deal.fund(0)
    await inbox(app, deal.dev, 2)
    prefs = (await app.client.get(f"{API}/me/notification-preferences", headers=deal.dev.auth)).json()
    assert prefs["channels"] == {"in_app": "On the site", "email": "E-mail", "recorder": "Recorder"}
    for _ in range(2):
        await deal.run_timers(days=0.001)
    mine = sorted(titles[0] for email, titles in channel.delivered if email == deal.dev.email)
    assert mine == [
        "You are hired for “Build an invoicing REST API”",
        "“Design” is funded: $400 is in escrow, start the work",
    ]


async def test_the_client_is_reminded_before_an_automatic_approval(app: App) -> None:
    deal = await hire(app)
    await deal.fund(0)
    await deal.fund(1)
    await deal.act(deal.dev, 0, "submit", {"note": "done"})
    await deal.act(deal.dev, 1, "submit", {"note": "done too"})
    await deal.act(deal.owner, 1, "request-changes", {"message": "not yet"})  # no reminder for this one
    await deal.run_timers(days=11.9)
    await asyncio.sleep(0.5)
    kinds = [
        n["kind"]
        for n in (await app.client.get(f"{API}/notifications", headers=deal.owner.auth)).json()["items"]
    ]
    assert "milestone.auto_approve_soon" not in kinds
    await deal.run_timers(days=12.01)
    got = await inbox(app, deal.owner, 4)  # the proposal, two submissions, the reminder
    reminders = [n for n in got["items"] if n["kind"] == "milestone.auto_approve_soon"]
    assert [n["title"] for n in reminders] == ["“Design” will be approved automatically in 2 days"]


class Hook:
    """An organisation's webhook receiver on loopback: it keeps each post's headers and body."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.posts.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_the_team_webhook_posts_signed_json_for_those_who_turn_it_on(apps: Apps) -> None:
    hook = Hook()
    async with LiveServer(hook, access_log=False) as receiver:
        settings = await apps.settings(
            accounts={**MARKET_ACCOUNTS, "require_verified_email": False},
            plugins={
                "notifications": {"webhook_url": f"{receiver.url}/hook", "webhook_secret": "team-secret"}
            },
        )
        app = await apps.open(settings)
        deal = await hire(app)
        prefs = (await app.client.get(f"{API}/me/notification-preferences", headers=deal.dev.auth)).json()
        assert prefs["channels"]["webhook"] == "Team webhook"
        on = await app.client.put(
            f"{API}/me/notification-preferences",
            headers=deal.dev.auth,
            json={"choices": [{"category": "contracts", "channel": "webhook", "enabled": True}]},
        )
        assert on.status_code == 200
        await deal.fund(0)
        await inbox(app, deal.dev, 2)
        await deal.run_timers(days=0.001)
        await deal.run_timers(days=0.001)  # a second sweep delivers nothing again
        assert len(hook.posts) == 1  # the client left the webhook off (the default)
        headers, body = hook.posts[0]
        stamp, mac = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", headers["mercato-signature"]).groups()  # type: ignore[union-attr]
        expected = hmac.new(b"team-secret", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, expected)
        payload = json.loads(body)
        assert payload["user_id"] == deal.dev.id
        assert "is funded" in payload["text"]
        assert payload["items"][0]["url"].startswith("http")
