"""The built-in channels: e-mail (one each, or a daily digest) and an organisation's webhook."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING

import httpx2
import msgspec

from mercato.core.mail import Mailer

if TYPE_CHECKING:
    from mercato.core.notify import NotificationItem, Recipient
    from mercato.core.site import Site

WEBHOOK_TIMEOUT = 10.0


class EmailChannel:
    id = "email"
    label = "E-mail"
    default_enabled = True
    digest = True

    async def deliver(self, site: Site, recipient: Recipient, items: list[NotificationItem], *,
                      digest: bool = False) -> None:
        template = "notification_digest" if digest else "notification"
        mailer = Mailer(site)
        message = await mailer.build(to=recipient.email, template=template, items=items, item=items[0],
                                     display_name=recipient.display_name,
                                     unsubscribe_url=recipient.unsubscribe_url)
        message["List-Unsubscribe"] = f"<{recipient.one_click_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        await mailer.deliver(message, template=template)


class WebhookPayload(msgspec.Struct, kw_only=True):
    site: str
    user_id: str
    display_name: str
    items: list[NotificationItem]
    text: str
    """Slack and Discord show this: the titles with their links."""
    content: str
    """The same, for Discord's incoming webhooks."""


class WebhookChannel:
    """Posts notifications as signed JSON to ``[plugins.notifications] webhook_url`` (an
    organisation's Slack or Discord incoming webhook, or its own service). Off for people until
    they turn it on, and only offered when a URL is set."""

    id = "webhook"
    label = "Team webhook"
    default_enabled = False
    digest = False

    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret

    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        moment = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(self.secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={moment},v1={mac}"

    async def deliver(self, site: Site, recipient: Recipient, items: list[NotificationItem], *,
                      digest: bool = False) -> None:
        text = "\n".join(f"{item.title}: {item.url}" for item in items)
        body = msgspec.json.encode(
            WebhookPayload(
                site=site.settings.site.name,
                user_id=str(recipient.user_id),
                display_name=recipient.display_name,
                items=items,
                text=text,
                content=text[:2000],
            )
        )
        headers = {
            "Content-Type": "application/json",
            "Mercato-Signature": self.sign(body),
            "Idempotency-Key": ",".join(str(item.id) for item in items)[:200],
        }
        async with httpx2.AsyncClient(timeout=WEBHOOK_TIMEOUT) as http:
            response = await http.post(self.url, content=body, headers=headers)
        response.raise_for_status()
