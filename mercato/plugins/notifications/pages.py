"""The notifications pages: the list behind the bell, opening one (marks it read), the
settings page with a channel per category, and the unsubscribe page e-mails link to."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from mercato.core.accounts.forms import AnyRequest, Page, redirect, to_login
from mercato.core.accounts.middleware import principal_of
from mercato.core.projects.pages import time_ago
from mercato.core.site import Site

from .models import Notification
from .service import IN_APP, Notifications, PreferenceIn


@get("/notifications", include_in_schema=False, name="notifications:list")
async def list_page(
    request: AnyRequest,
    site: NamedDependency[Site],
    cursor: FromQuery[str | None] = None,
    done: FromQuery[str | None] = None,
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login("/notifications")
    async with site.db.reading() as session:
        page = await Notifications(site).page(
            session, principal.user_id, unread_only=False, limit=30, cursor=cursor
        )
    notices = [("success", "Everything is marked read.")] if done == "read" else []
    return await site.templates.page(
        request,
        "notifications/list.html",
        {
            "page": page,
            "ago": time_ago,
            "notices": notices,
            "cursor": cursor,
        },
    )


@get("/notifications/{notification_id:uuid}/open", include_in_schema=False, name="notifications:open")
async def open_one(
    request: AnyRequest, notification_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Go where the notification points, marking it read on the way."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/notifications")
    async with site.db.transaction() as session:
        row = await session.get(Notification, notification_id)
        if row is None or row.user_id != principal.user_id:
            raise NotFoundException("No such notification.")
        url = row.url if row.url.startswith("/") and not row.url.startswith("//") else "/notifications"
        await Notifications(site).mark_read(session, principal.user_id, notification_id)
    return redirect(url)


@post("/notifications/read-all", include_in_schema=False, name="notifications:read-all")
async def read_all(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login("/notifications")
    async with site.db.transaction() as session:
        await Notifications(site).mark_read(session, principal.user_id, None)
    return redirect("/notifications?done=read")


@get("/settings/notifications", include_in_schema=False, name="notifications:settings")
async def settings_page(
    request: AnyRequest, site: NamedDependency[Site], saved: FromQuery[str | None] = None
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login("/settings/notifications")
    service = Notifications(site)
    async with site.db.reading() as session:
        preferences = await service.preferences(session, principal.user_id)
    return await site.templates.page(
        request,
        "notifications/settings.html",
        {
            "preferences": preferences,
            "channels": service.channels(),
            "in_app": IN_APP,
            "notices": [("success", "Your notification settings are saved.")] if saved else [],
            "active": "notifications",
        },
    )


@post("/settings/notifications", include_in_schema=False, name="notifications:save")
async def save_settings(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Every box of the form: ticked is on; a ``<category>:<channel>:digest`` box asks for a digest."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/settings/notifications")
    form = await request.form()
    ticked = {value for value in form.getall("on", []) if isinstance(value, str)}
    digests = {value for value in form.getall("digest", []) if isinstance(value, str)}
    service = Notifications(site)
    async with site.db.transaction() as session:
        preferences = await service.preferences(session, principal.user_id)
        choices = [
            PreferenceIn(
                category=row.category,
                channel=choice.channel,
                enabled=f"{row.category}:{choice.channel}" in ticked,
                digest=f"{row.category}:{choice.channel}" in digests,
            )
            for row in preferences.categories
            for choice in row.channels
        ]
        await service.choose(session, principal.user_id, choices)
    return redirect("/settings/notifications?saved=1")


@get("/notifications/unsubscribe", include_in_schema=False, name="notifications:unsubscribe")
async def unsubscribe_page(
    request: AnyRequest, site: NamedDependency[Site], token: FromQuery[str] = ""
) -> Page:
    """The page an e-mail's unsubscribe link opens: it says what will stop, with one button."""
    found = Notifications(site).read_unsubscribe_token(token)
    return await site.templates.page(
        request,
        "notifications/unsubscribe.html",
        {
            "token": token,
            "valid": found is not None,
            "done": False,
            "channel": found[1] if found else "",
            "category": found[2] if found else "",
        },
        status_code=200 if found else 400,
    )


@post("/notifications/unsubscribe", include_in_schema=False, name="notifications:unsubscribe-confirm")
async def unsubscribe_confirm(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    form = await request.form()
    token = form.get("token") if isinstance(form.get("token"), str) else ""
    return await _unsubscribe(request, site, str(token or ""))


async def _unsubscribe(request: AnyRequest, site: Site, token: str) -> Any:
    service = Notifications(site)
    found = service.read_unsubscribe_token(token)
    if found is None:
        return await site.templates.page(
            request,
            "notifications/unsubscribe.html",
            {"token": token, "valid": False, "done": False, "channel": "", "category": ""},
            status_code=400,
        )
    user_id, channel, category = found
    async with site.db.transaction() as session:
        await service.unsubscribe(session, user_id, channel, category)
    return await site.templates.page(
        request,
        "notifications/unsubscribe.html",
        {"token": token, "valid": True, "done": True, "channel": channel, "category": category},
    )


PAGE_ROUTES: list[Any] = [
    list_page,
    open_one,
    read_all,
    settings_page,
    save_settings,
    unsubscribe_page,
    unsubscribe_confirm,
]
