"""Built-in plugin: the development mailbox at ``/dev/mailbox``.

While ``[mail]`` has no SMTP host the site writes its mail to ``<data_dir>/mail``; these
pages list those mails and show each one, text and HTML. With an SMTP backend the routes
are not registered at all.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from mercato import hookimpl
from mercato.core.site import Site

TEMPLATES = Path(__file__).parent / "templates"
_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


@get("/dev/mailbox", include_in_schema=False, name="dev_mailbox:index")
async def mailbox_index(request: Request[Any, Any, Any], site: NamedDependency[Site]) -> Template:
    """Every stored mail, newest first."""
    mails = await asyncio.to_thread(site.mail.mailbox)
    page = await site.templates.page(request, "dev_mailbox/index.html", {"mails": mails})
    page.headers.update(_NO_STORE)
    return page


@get("/dev/mailbox/{mail_id:str}", include_in_schema=False, name="dev_mailbox:message")
async def mailbox_message(
    request: Request[Any, Any, Any], site: NamedDependency[Site], mail_id: FromPath[str]
) -> Template:
    """One stored mail: headers, the plain text, and the HTML in a sandboxed frame."""
    mail = await asyncio.to_thread(site.mail.stored, mail_id)
    if mail is None:
        raise NotFoundException("No such mail in the development mailbox.")
    page = await site.templates.page(
        request, "dev_mailbox/message.html", {"mail": mail, "srcdoc": frame_document(mail.html)}
    )
    page.headers.update(_NO_STORE)
    return page


def frame_document(html: str) -> str:
    """The mail's HTML with ``<base target="_top">``, so its links leave the frame."""
    base = '<base target="_top">'
    match = _HEAD.search(html)
    if match is None:
        return base + html
    return html[: match.end()] + base + html[match.end() :]


@hookimpl
def register_routes(site: Site) -> list[Any]:
    if site.mail.backend != "file" or not site.settings.mail.dev_mailbox:
        return []
    return [mailbox_index, mailbox_message]


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    return [TEMPLATES]
