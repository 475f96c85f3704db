"""Account mail through a real SMTP server (aiosmtpd): sign up, receive the verification
mail, open its link; forget the password, receive the reset mail, follow its link through
the theme's form, and log in with the new password."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

from litestar.testing import AsyncTestClient

from mercato import create_app
from mercato.core.site import Site
from tests.conftest import _delete_streams, _with_database
from tests.smtp_fixtures import Collector, parse, part

PASSWORD = "lighthouse keeper of Alexandria"
NEW_PASSWORD = "a brand new lighthouse 2"
HTML = {"accept": "text/html"}


async def mail_to(handler: Collector, address: str, subject_word: str) -> Any:
    """The newest mail to ``address`` whose subject mentions ``subject_word`` (waits a little:
    some mail leaves after commit, in the background)."""
    for _ in range(100):
        for envelope in reversed(handler.envelopes):
            message = parse(envelope.content)
            if address in envelope.rcpt_tos and subject_word in message["Subject"].lower():
                return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail about {subject_word!r} reached {address}")


def link_in(message: Any) -> str:
    text = part(message, "plain")
    found = re.search(r"https?://\S+", text)
    assert found, text
    html = part(message, "html")
    assert found.group(0).replace("&", "&amp;") in html, "the HTML part carries the same link"
    return found.group(0)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the form carries a CSRF token"
    return found.group(1)


async def test_verification_and_reset_mail_arrive_by_smtp_and_their_links_work(
    make_settings: Any, databases: Any, smtp_server: tuple[Collector, int],
) -> None:
    handler, port = smtp_server
    settings = make_settings(mail={"host": "127.0.0.1", "port": port, "security": "none",
                                   "from_address": "Market <noreply@market.example>"})
    settings = _with_database(settings, await databases.create_migrated(settings))
    async with AsyncTestClient(create_app(site=Site(settings)), base_url="http://127.0.0.1:8000") as client:
        signed_up = await client.post("/api/v1/auth/register", json={
            "email": "hypatia@example.com", "password": PASSWORD, "display_name": "Hypatia",
            "roles": ["developer"]})
        assert signed_up.status_code == 201, signed_up.text
        bearer = {"Authorization": f"Bearer {signed_up.json()['access_token']}"}
        assert (await client.get("/api/v1/me", headers=bearer)).json()["email_verified"] is False

        verification = await mail_to(handler, "hypatia@example.com", "confirm")
        assert verification["From"] == "Market <noreply@market.example>"
        link = urlsplit(link_in(verification))
        assert link.path == "/verify-email"
        opened = await client.get(f"{link.path}?{link.query}", headers=HTML)
        assert opened.status_code == 200
        assert (await client.get("/api/v1/me", headers=bearer)).json()["email_verified"] is True

        form = await client.get("/forgot-password", headers=HTML)
        asked = await client.post("/forgot-password", headers=HTML, data={
            "csrf_token": csrf_of(form.text), "email": "hypatia@example.com"})
        assert asked.status_code == 200

        reset = await mail_to(handler, "hypatia@example.com", "password")
        link = urlsplit(link_in(reset))
        assert link.path == "/reset-password"
        reset_form = await client.get(f"{link.path}?{link.query}", headers=HTML)
        assert reset_form.status_code == 200
        token = re.search(r'name="token" value="([^"]+)"', reset_form.text)
        assert token, "the form keeps the link's token"
        saved = await client.post("/reset-password", headers=HTML, follow_redirects=False, data={
            "csrf_token": csrf_of(reset_form.text), "token": token.group(1), "new_password": NEW_PASSWORD})
        assert saved.status_code == 303
        assert saved.headers["location"] == "/login?reset=1"

        assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401  # sessions ended
        client.cookies.clear()
        old = await client.post("/api/v1/auth/login", json={"email": "hypatia@example.com",
                                                            "password": PASSWORD})
        new = await client.post("/api/v1/auth/login", json={"email": "hypatia@example.com",
                                                            "password": NEW_PASSWORD})
        assert old.status_code == 401
        assert new.status_code == 200
        notice = await mail_to(handler, "hypatia@example.com", "changed")
        assert NEW_PASSWORD not in part(notice, "plain")
    await _delete_streams(settings.events.nats_url, {settings.events.stream})
