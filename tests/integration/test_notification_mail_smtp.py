"""Notification e-mail through a real SMTP server (aiosmtpd): one e-mail each with
``List-Unsubscribe`` headers whose one-click address works; then a daily digest; and the
unsubscribe page's link from the e-mail body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import Databases, MakeSettings
from tests.integration.test_account_mail_smtp import mail_to
from tests.integration.test_milestones import hire
from tests.integration.test_notifications import inbox
from tests.marketplace_helpers import API, MARKET_ACCOUNTS, Apps
from tests.smtp_fixtures import Collector, parse, part


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


async def test_immediate_then_digest_by_smtp_and_one_click_unsubscribe(
    apps: Apps, smtp_server: tuple[Collector, int]
) -> None:
    handler, port = smtp_server
    app = await apps.open(
        await apps.settings(
            accounts={**MARKET_ACCOUNTS, "require_verified_email": False},
            mail={
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from_address": "Market <noreply@market.example>",
            },
        )
    )
    deal = await hire(app)
    await deal.fund(0)
    await inbox(app, deal.dev, 2)
    await deal.run_timers(days=0.001)
    funded = await mail_to(handler, deal.dev.email, "is funded")
    assert funded["From"] == "Market <noreply@market.example>"
    assert funded["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = urlsplit(funded["List-Unsubscribe"].strip("<>"))
    assert one_click.path == "/api/v1/notifications/unsubscribe"
    text = part(funded, "plain")
    assert f"/contracts/{deal.contract['id']}#milestone-" in text
    assert "/notifications/unsubscribe?token=" in text

    # a digest for payments, then one click stops contracts e-mail
    await app.client.put(
        f"{API}/me/notification-preferences",
        headers=deal.dev.auth,
        json={"choices": [{"category": "payments", "channel": "email", "enabled": True, "digest": True}]},
    )
    await deal.act(deal.owner, 0, "approve")
    await inbox(app, deal.dev, 4)
    await deal.run_timers(days=1.01)
    digest = await mail_to(handler, deal.dev.email, "digest")
    assert "released to you" in part(digest, "plain")
    assert "released to you" in part(digest, "html")
    clicked = await app.client.post(f"{one_click.path}?{one_click.query}")  # what a mail client does
    assert clicked.status_code == 204
    prefs = (await app.client.get(f"{API}/me/notification-preferences", headers=deal.dev.auth)).json()
    contracts = {c["channel"]: c["enabled"] for c in prefs["categories"][1]["channels"]}
    assert contracts["email"] is False
    sent_before = len(handler.envelopes)
    await deal.fund(1)
    await inbox(app, deal.dev, 5)
    await deal.run_timers(days=0.002)
    later = [
        parse(e.content)["Subject"] for e in handler.envelopes[sent_before:] if deal.dev.email in e.rcpt_tos
    ]
    assert not any("is funded" in subject for subject in later), later
