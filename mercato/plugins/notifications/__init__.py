"""notifications: domain events become notifications for the people they concern, shown on
the site (the bell, ``/notifications``, pushed live to open pages) and carried by channels
(e-mail, one each or a daily digest; an organisation's webhook) per each person's settings.

Settings: ``[plugins.notifications]`` (``digest_hour``, ``webhook_url``, ``webhook_secret``).
Its tables are on its own migration branch, ``notifications``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercato import hookimpl

from .channels import EmailChannel, WebhookChannel
from .models import Notification, NotificationPreference
from .service import PLUGIN_ID, Notifications, NotificationSettings

if TYPE_CHECKING:
    from litestar import Request

    from mercato.core.events import EventHandler
    from mercato.core.site import Site
    from mercato.core.timers import TimerHandler

PACKAGE_DIR = Path(__file__).parent


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [Notification, NotificationPreference]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


@hookimpl
def register_settings() -> dict[str, type[Any]]:
    return {PLUGIN_ID: NotificationSettings}


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "templates"]


@hookimpl
def register_routes(site: Site) -> list[Any]:
    from .pages import PAGE_ROUTES
    from .routes import NotificationsController

    return [NotificationsController, *PAGE_ROUTES]


@hookimpl
def register_event_handlers(site: Site) -> list[EventHandler]:
    return Notifications(site).event_handlers()


@hookimpl
def register_timer_handlers(site: Site) -> list[TimerHandler]:
    """Deliveries by channel, and daily digests."""
    return Notifications(site).timer_handlers()


@hookimpl
def register_notification_channels(site: Site) -> list[Any]:
    settings = Notifications(site).settings
    channels: list[Any] = [EmailChannel()]
    if settings.webhook_url:
        channels.append(WebhookChannel(settings.webhook_url, settings.webhook_secret))
    return channels


@hookimpl
async def extra_template_vars(site: Site, request: Request[Any, Any, Any] | None) -> dict[str, Any]:
    """``unread_notifications`` for the bell of a signed-in person's pages."""
    from mercato.core.accounts.middleware import principal_of

    principal = principal_of(request) if request is not None else None
    if principal is None:
        return {}
    async with site.db.reading() as session:
        return {
            "unread_notifications": await Notifications(site).unread(session, principal.user_id),
            "notifications_enabled": True,
        }
