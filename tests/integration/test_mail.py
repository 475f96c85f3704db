"""Outgoing mail: a real SMTP server (aiosmtpd), the file backend and the dev mailbox."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from mercato import create_app
from mercato.core.mail import MailError
from mercato.core.site import Site
from tests.conftest import _delete_streams
from tests.smtp_fixtures import Collector, free_port, parse, part

LINK = "https://market.example/account/verify?token=tok-123456&next=/projects?a=1&b=2"


async def test_smtp_delivers_text_and_html_parts(
    make_settings: Any, sites: Any, smtp_server: tuple[Collector, int], caplog: pytest.LogCaptureFixture
) -> None:
    handler, port = smtp_server
    settings = make_settings(
        site={"name": "DevMarket", "base_url": "https://market.example/"},
        mail={"host": "127.0.0.1", "port": port, "security": "none", "timeout_seconds": 5,
              "from_address": "DevMarket <noreply@market.example>"},
    )
    site = await sites.start(settings, background=False)
    assert site.mail.backend == "smtp"
    caplog.set_level(logging.INFO)

    await site.mail.send(to="ann@example.com", template="verify_email",
                         display_name="Ann <b>&</b>", link=LINK, hours=48)

    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "noreply@market.example"
    assert envelope.rcpt_tos == ["ann@example.com"]
    message = parse(envelope.content)
    assert message["From"] == "DevMarket <noreply@market.example>"
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Confirm your e-mail address for DevMarket"
    assert message["Date"]
    assert re.fullmatch(r"<[^@>]+@market\.example>", message["Message-ID"])
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]

    text = part(message, "plain")
    assert LINK in text  # verbatim: not HTML-escaped
    assert "Hi Ann <b>&</b>," in text
    assert "&amp;" not in text
    assert "You received this because an account on DevMarket uses this address." in text

    html = part(message, "html")
    assert f'href="{LINK.replace("&", "&amp;")}"' in html
    assert "Hi Ann &lt;b&gt;&amp;&lt;/b&gt;," in html
    assert "<b>&</b>" not in html
    assert "You received this because an account on DevMarket uses this address." in html
    assert 'href="https://market.example/"' in html  # base_url without its trailing slash

    assert "tok-123456" not in caplog.text  # the context (and its token) is never logged
    sent = [r for r in caplog.records if r.name == "mercato.mail"]
    assert len(sent) == 1
    assert "ann@example.com" in sent[0].getMessage()
    assert "verify_email" in sent[0].getMessage()


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [
        ("password_reset", {"display_name": "Bo", "link": LINK, "minutes": 60}, "ignore this mail"),
        ("email_changed", {"display_name": "Bo", "new_email_hint": "j***@example.com"}, "j***@example.com"),
        ("password_changed", {"display_name": "Bo"}, "password of your"),
    ],
)
async def test_every_mail_template_renders(
    make_settings: Any, sites: Any, smtp_server: tuple[Collector, int],
    template: str, context: dict[str, Any], expected: str,
) -> None:
    handler, port = smtp_server
    settings = make_settings(mail={"host": "127.0.0.1", "port": port, "security": "none"})
    site = await sites.start(settings, background=False)
    await site.mail.send(to="bo@example.com", template=template, **context)
    message = parse(handler.envelopes[0].content)
    assert message["Subject"]
    assert "\n" not in message["Subject"]
    assert expected in part(message, "plain")
    assert expected in part(message, "html")


async def test_smtp_server_down_is_a_mail_error_naming_the_settings(make_settings: Any, sites: Any) -> None:
    port = free_port()  # nothing listens here
    settings = make_settings(mail={"host": "127.0.0.1", "port": port, "security": "none",
                                   "username": "mailer", "password": "hunter2-secret",
                                   "timeout_seconds": 2})
    site = await sites.start(settings, background=False)
    with pytest.raises(MailError) as caught:
        await site.mail.send(to="ann@example.com", template="password_changed", display_name="Ann")
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "[mail] host/port/security" in message
    assert "hunter2-secret" not in message
    assert caught.value.__cause__ is None


async def test_file_backend_writes_eml_and_mailbox_reads_it(make_settings: Any, sites: Any) -> None:
    site = await sites.start(make_settings(), background=False)
    assert site.mail.backend == "file"
    assert site.mail.mailbox() == []

    await site.mail.send(to="ann@example.com", template="verify_email",
                         display_name="Ann", link=LINK, hours=48)
    await site.mail.send(to="bo@example.com", template="password_changed", display_name="Bo")

    files = sorted((site.settings.data_path / "mail").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no temporary files left behind
    newest, oldest = site.mail.mailbox()
    assert newest.to == "bo@example.com"
    assert oldest.to == "ann@example.com"
    assert oldest.subject == "Confirm your e-mail address for mercato"
    assert LINK in oldest.text
    assert LINK.replace("&", "&amp;") in oldest.html
    assert oldest.date.tzinfo is not None
    assert site.mail.stored(oldest.id) == oldest
    assert site.mail.stored("nope") is None
    assert site.mail.stored("../secret_key") is None


async def test_explicit_file_backend_ignores_the_host(make_settings: Any, sites: Any) -> None:
    settings = make_settings(mail={"backend": "file", "host": "smtp.invalid"})
    site = await sites.start(settings, background=False)
    assert site.mail.backend == "file"
    await site.mail.send(to="ann@example.com", template="password_changed", display_name="Ann")
    assert len(site.mail.mailbox()) == 1


# ---------------------------------------------------------------------------
# The dev mailbox pages
# ---------------------------------------------------------------------------


@pytest.fixture
async def mailbox_app(migrated_settings: Any) -> AsyncIterator[tuple[Any, Site]]:
    migrated_settings.mail.dev_mailbox = True
    site = Site(migrated_settings)
    async with AsyncTestClient(create_app(site=site)) as client:
        yield client, site
    await _delete_streams(migrated_settings.events.nats_url, {migrated_settings.events.stream})


HTML = {"Accept": "text/html"}


async def test_dev_mailbox_lists_and_shows_mail(mailbox_app: tuple[Any, Site]) -> None:
    client, site = mailbox_app
    empty = await client.get("/dev/mailbox", headers=HTML)
    assert empty.status_code == 200
    assert "No mail yet." in empty.text
    assert "development mailbox" in empty.text

    await site.mail.send(to="ann@example.com", template="verify_email",
                         display_name="Ann", link=LINK, hours=48)
    listing = await client.get("/dev/mailbox", headers=HTML)
    assert listing.status_code == 200
    assert "ann@example.com" in listing.text
    assert "Confirm your e-mail address for mercato" in listing.text
    assert "development mailbox" in listing.text
    mail_id = site.mail.mailbox()[0].id
    assert f'href="/dev/mailbox/{mail_id}"' in listing.text

    page = await client.get(f"/dev/mailbox/{mail_id}", headers=HTML)
    assert page.status_code == 200
    assert "development mailbox" in page.text
    assert "ann@example.com" in page.text
    assert f"<pre>{_escape(site.mail.stored(mail_id).text)}</pre>" in page.text  # type: ignore[union-attr]
    assert 'sandbox="allow-top-navigation-by-user-activation allow-popups"' in page.text
    srcdoc = re.search(r'srcdoc="([^"]*)"', page.text)
    assert srcdoc is not None
    assert "&lt;base target=&#34;_top&#34;&gt;" in srcdoc.group(1)
    assert "<a " not in srcdoc.group(1)  # the whole document is escaped into the attribute


async def test_dev_mailbox_unknown_and_traversing_ids_are_404(mailbox_app: tuple[Any, Site]) -> None:
    client, site = mailbox_app
    site.settings.secret_key()  # make sure <data_dir>/secret_key exists
    for path in ("/dev/mailbox/20240101T000000000000Z-000000000000", "/dev/mailbox/nope",
                 "/dev/mailbox/..%2Fsecret_key", "/dev/mailbox/..%2F..%2Fmercato.toml"):
        response = await client.get(path, headers=HTML)
        assert response.status_code == 404, path
        assert site.settings.secret_key() not in response.text


async def test_dev_mailbox_is_off_unless_asked_for(migrated_settings: Any) -> None:
    site = Site(migrated_settings)
    async with AsyncTestClient(create_app(site=site)) as client:
        await site.mail.send(to="ada@example.com", template="verify_email", display_name="Ada",
                             link="http://127.0.0.1:8000/verify-email?token=secret", hours=48)
        page = await client.get("/dev/mailbox", headers=HTML)
    await _delete_streams(migrated_settings.events.nats_url, {migrated_settings.events.stream})
    assert page.status_code == 404
    assert "secret" not in page.text


async def test_dev_mailbox_is_absent_with_an_smtp_host(make_settings: Any) -> None:
    settings = make_settings(mail={"host": "127.0.0.1", "port": free_port(), "security": "none"})
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.get("/dev/mailbox", headers=HTML)
        detail = await client.get("/dev/mailbox/20240101T000000000000Z-000000000000", headers=HTML)
    await _delete_streams(settings.events.nats_url, {settings.events.stream})
    assert response.status_code == 404
    assert detail.status_code == 404


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


async def test_starttls_against_a_server_without_it_is_a_mail_error(
    make_settings: Any, sites: Any, smtp_server: tuple[Collector, int]
) -> None:
    handler, port = smtp_server
    settings = make_settings(mail={"host": "127.0.0.1", "port": port, "security": "starttls"})
    site = await sites.start(settings, background=False)
    with pytest.raises(MailError, match=r"security=starttls.*\[mail\] host/port/security"):
        await site.mail.send(to="ann@example.com", template="password_changed", display_name="Ann")
    assert handler.envelopes == []
