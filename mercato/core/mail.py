"""Outgoing e-mail: theme templates rendered into a text + HTML message, sent by SMTP or
written to ``<data_dir>/mail`` (the development mailbox, shown at ``/dev/mailbox``).

Every mail is three theme templates: ``mail/<name>.subject.txt`` (one line),
``mail/<name>.txt`` (plain text, never HTML-escaped) and ``mail/<name>.html``. Besides the
caller's values they see ``site_name`` and ``base_url`` (without a trailing slash).
Contexts often hold secrets (verification and reset links), so nothing here logs them.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import structlog

if TYPE_CHECKING:
    import jinja2

    from mercato.core.site import Site

log = structlog.get_logger("mercato.mail")

MAILBOX_LIMIT = 200
"""The development mailbox lists at most this many of the newest mails."""

_MAIL_ID = re.compile(r"\A[0-9]{8}T[0-9]{12}Z-[0-9a-f]{12}\Z")
"""A stored mail's id (its file stem): ``<UTC timestamp>-<random hex>``; nothing else."""
_TEMPLATE_NAME = re.compile(r"\A[a-z0-9_]+(?:/[a-z0-9_]+)*\Z")


class MailError(Exception):
    """A mail could not be delivered; the message says which settings to check."""


@dataclass(frozen=True, slots=True)
class StoredMail:
    """One mail from the file mailbox."""

    id: str
    to: str
    subject: str
    date: datetime
    text: str
    html: str


class Mailer:
    """Renders and delivers the site's mail. Cheap to build: nothing connects until ``send``."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._text_env: jinja2.Environment | None = None

    # -- configuration ------------------------------------------------------
    @property
    def backend(self) -> Literal["smtp", "file"]:
        """The effective backend: ``auto`` means ``smtp`` when ``[mail] host`` is set, else ``file``."""
        mail = self.site.settings.mail
        if mail.backend == "auto":
            return "smtp" if mail.host else "file"
        return mail.backend

    @property
    def mail_dir(self) -> Path:
        """Where the ``file`` backend keeps mails: ``<data_dir>/mail``."""
        return self.site.settings.data_path / "mail"

    @property
    def base_url(self) -> str:
        return self.site.settings.site.base_url.rstrip("/")

    # -- sending ------------------------------------------------------------
    async def send(self, *, to: str, template: str, **context: Any) -> None:
        """Render ``mail/<template>.*`` with ``context`` and deliver it to ``to``.

        Raises :class:`MailError` when the SMTP server cannot be reached or refuses the mail.
        """
        await self.deliver(await self.build(to=to, template=template, **context), template=template)

    async def deliver(self, message: EmailMessage, *, template: str) -> None:
        """Deliver a message from :meth:`build` (perhaps with headers added, such as
        ``List-Unsubscribe``); ``template`` names it in the log."""
        to = message["To"]
        backend = self.backend
        if backend == "smtp":
            await self._send_smtp(message)
            log.info("mail sent", to=to, template=template, backend=backend)
        else:
            mail_id = await asyncio.to_thread(self._write_file, message)
            log.info("mail stored", to=to, template=template, backend=backend, mail_id=mail_id)

    async def build(self, *, to: str, template: str, **context: Any) -> EmailMessage:
        """The message :meth:`send` would deliver (multipart/alternative: text, then HTML)."""
        if not _TEMPLATE_NAME.match(template):
            raise ValueError(f"mail template name {template!r}: use lowercase letters, digits and _")
        values = {"site_name": self.site.settings.site.name, "base_url": self.base_url, **context}
        subject = await self._render_text(f"mail/{template}.subject.txt", values)
        text = await self._render_text(f"mail/{template}.txt", values)
        html = await self.site.templates.render(f"mail/{template}.html", **values)

        message = EmailMessage()
        message["From"] = self.site.settings.mail.from_address
        message["To"] = to
        message["Subject"] = " ".join(subject.split())
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=urlsplit(self.base_url).hostname or "localhost")
        message.set_content(text.strip() + "\n")
        message.add_alternative(html, subtype="html")
        return message

    async def _render_text(self, template_name: str, values: dict[str, Any]) -> str:
        """Render a plain-text template: same loader, globals and filters, no HTML escaping."""
        if self._text_env is None:
            self._text_env = self.site.templates.env.overlay(autoescape=False)
        context = await self.site.templates.context(None, template_name, values)
        return self._text_env.get_template(template_name).render(context)

    async def _send_smtp(self, message: EmailMessage) -> None:
        import aiosmtplib

        mail = self.site.settings.mail
        try:
            await aiosmtplib.send(
                message,
                hostname=mail.host or "localhost",
                port=mail.port,
                username=mail.username or None,
                password=mail.password or None,
                use_tls=mail.security == "tls",
                start_tls=mail.security == "starttls",
                timeout=mail.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if mail.password:
                reason = reason.replace(mail.password, "***")
            hint = (
                "check [mail] username/password"
                if isinstance(exc, aiosmtplib.SMTPAuthenticationError)
                else "check [mail] host/port/security"
            )
            raise MailError(
                f"could not send mail through SMTP server {mail.host or 'localhost'}:{mail.port} "
                f"(security={mail.security}): {reason}; {hint}"
            ) from None

    def _write_file(self, message: EmailMessage) -> str:
        """Write ``message`` atomically as ``<mail_dir>/<id>.eml``; returns the id."""
        folder = self.mail_dir
        folder.mkdir(parents=True, exist_ok=True)
        mail_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(6)}"
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(message.as_bytes())
            os.replace(temp, folder / f"{mail_id}.eml")
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return mail_id

    # -- the file mailbox ---------------------------------------------------
    def mailbox(self) -> list[StoredMail]:
        """Mails the ``file`` backend wrote, newest first (at most :data:`MAILBOX_LIMIT`)."""
        try:
            names = [entry.name for entry in os.scandir(self.mail_dir)]
        except FileNotFoundError:
            return []
        ids = sorted((name[:-4] for name in names if name.endswith(".eml")), reverse=True)
        mails = []
        for mail_id in [i for i in ids if _MAIL_ID.match(i)][:MAILBOX_LIMIT]:
            stored = self.stored(mail_id)
            if stored is not None:
                mails.append(stored)
        return mails

    def stored(self, mail_id: str) -> StoredMail | None:
        """One mail of the file mailbox by id, or None (also for anything not an id)."""
        if not _MAIL_ID.match(mail_id):
            return None
        try:
            data = (self.mail_dir / f"{mail_id}.eml").read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
        message = email.message_from_bytes(data, policy=email.policy.default)
        return StoredMail(
            id=mail_id,
            to=str(message.get("To", "")),
            subject=str(message.get("Subject", "")),
            date=_date_of(message, mail_id),
            text=_part(message, "plain"),
            html=_part(message, "html"),
        )


def _part(message: Message, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,)) if isinstance(message, EmailMessage) else None
    if body is None:
        return ""
    content = body.get_content()
    return content if isinstance(content, str) else content.decode("utf-8", "replace")


def _date_of(message: Message, mail_id: str) -> datetime:
    header = message.get("Date")
    if header:
        try:
            return parsedate_to_datetime(str(header))
        except (TypeError, ValueError):
            pass
    return datetime.strptime(mail_id[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
