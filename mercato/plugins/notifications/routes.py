"""The notifications API: your notifications, marking them read, your preferences."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody

from mercato.core.accounts.routes import require_principal
from mercato.core.errors import field_error
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.site import Site

from .models import Notification
from .service import NotificationPage, Notifications, Preferences, PreferencesIn


class NotificationsController(Controller):
    path = "/api/v1"
    tags = ["notifications"]

    @get("/notifications", summary="Your notifications, newest first")
    async def list_notifications(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        unread: FromQuery[bool] = False,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> NotificationPage:
        """``unread=true`` lists only those not yet read; ``unread`` in the answer counts them all."""
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await Notifications(site).page(
                session, principal.user_id, unread_only=unread, limit=limit, cursor=cursor
            )

    @post("/notifications/{notification_id:uuid}/read", status_code=204, summary="Mark one read")
    async def read_one(
        self,
        request: Request[Any, Any, Any],
        notification_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> None:
        principal = require_principal(request)
        service = Notifications(site)
        async with site.db.transaction() as session:
            row = await session.get(Notification, notification_id)
            if row is None or row.user_id != principal.user_id:
                raise NotFoundException("No such notification.")
            await service.mark_read(session, principal.user_id, notification_id)

    @post("/notifications/read-all", status_code=204, summary="Mark all of yours read")
    async def read_all(self, request: Request[Any, Any, Any], site: NamedDependency[Site]) -> None:
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await Notifications(site).mark_read(session, principal.user_id, None)

    @get("/me/notification-preferences", summary="Your channels per category")
    async def preferences(self, request: Request[Any, Any, Any], site: NamedDependency[Site]) -> Preferences:
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await Notifications(site).preferences(session, principal.user_id)

    @put("/me/notification-preferences", summary="Turn channels on or off per category")
    async def choose(
        self, request: Request[Any, Any, Any], data: JSONBody[PreferencesIn], site: NamedDependency[Site]
    ) -> Preferences:
        """Send only the choices you change: ``{"choices": [{"category": "payments", "channel":
        "email", "enabled": true, "digest": true}]}``."""
        principal = require_principal(request)
        service = Notifications(site)
        async with site.db.transaction() as session:
            await service.choose(session, principal.user_id, data.choices)
            return await service.preferences(session, principal.user_id)

    @post("/notifications/unsubscribe", status_code=204, summary="One-click unsubscribe (RFC 8058)")
    async def unsubscribe(self, site: NamedDependency[Site], token: FromQuery[str] = "") -> None:
        """What mail clients call for an e-mail's ``List-Unsubscribe-Post`` header: the signed
        ``token`` from the e-mail is the authority, no log-in needed."""
        service = Notifications(site)
        found = service.read_unsubscribe_token(token)
        if found is None:
            raise field_error("token", "This unsubscribe link is not valid.")
        async with site.db.transaction() as session:
            await service.unsubscribe(session, *found)
