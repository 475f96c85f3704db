# mypy: disable-error-code="empty-body"
"""Every hook a mercato plugin can implement.

A plugin is a module (or object) whose functions are marked with
:data:`mercato.hookimpl` and named after a spec below. Implementations may accept any
subset of a spec's arguments, by name. ``on_startup``, ``on_shutdown`` and
``extra_template_vars`` may be ``async def`` (mercato awaits what they return); every other
hook runs while the app is assembled and must return its value plainly.

Families: ``register_*`` collect one list from every plugin; ``on_*`` are lifecycle
notifications; ``extra_template_vars`` and ``prepare_jinja_env`` extend the theme;
``validate_*`` let plugins reject content (collected reasons).
Each spec names the version it appeared in; ``docs/plugins/hooks.md`` documents them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable
    from pathlib import Path

    import click
    import jinja2
    import msgspec
    from litestar import Request
    from litestar.types import ControllerRouterHandler, Middleware

    from mercato.core.events import EventHandler
    from mercato.core.moderation import ReportSubject
    from mercato.core.navigation import NavItem
    from mercato.core.notify import NotificationChannel
    from mercato.core.payments.fees import FeePolicy
    from mercato.core.payments.gateways import PaymentGateway
    from mercato.core.recommend import Recommender
    from mercato.core.search import SearchBackend
    from mercato.core.security.providers import AuthProvider
    from mercato.core.site import Site
    from mercato.core.socket import SocketHandler
    from mercato.core.storage import Storage
    from mercato.core.timers import TimerHandler

hookspec = pluggy.HookspecMarker("mercato")


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


@hookspec
def register_settings() -> dict[str, type[msgspec.Struct]]:
    """Declare the Struct that validates this plugin's ``[plugins.<id>]`` table.

    Return ``{plugin_id: StructType}``. At startup the table (or ``{}`` when absent) is
    converted into that Struct; an unknown key or wrong type stops startup naming the key.
    Read the result with ``site.plugin_settings(plugin_id)``. Since 0.1.
    """


# ---------------------------------------------------------------------------
# Web: routes, templates, static files, navigation
# ---------------------------------------------------------------------------


@hookspec
def register_routes(site: Site) -> Iterable[ControllerRouterHandler]:
    """Return Litestar route handlers, controllers or routers to mount on the app. Since 0.1."""


@hookspec
def register_middleware(site: Site) -> Iterable[Middleware]:
    """Return ASGI middleware (factories taking the next app) wrapped around every route,
    in plugin registration order (earlier plugins outermost), inside the kernel's own
    request-id middleware. Exceptions they raise become problem details. Since 0.1."""


@hookspec
def register_template_dirs(site: Site) -> Iterable[str | Path]:
    """Return template folders; they are searched after the site's own folder and before the
    theme, so a plugin can add templates and override the theme's. Since 0.1."""


@hookspec
def register_static_dirs(site: Site) -> Iterable[str | Path]:
    """Return folders served under ``/static/``, searched after the site's own static folder
    and before the theme's. Namespace files in a sub-folder named after the plugin. Since 0.1."""


@hookspec
def register_nav_items(site: Site) -> Iterable[NavItem]:
    """Return :class:`~mercato.core.navigation.NavItem` entries for the theme's main
    navigation, ordered by their ``order``. Since 0.1."""


@hookspec
def extra_template_vars(
    site: Site, request: Request[Any, Any, Any] | None, template_name: str
) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    """Return extra variables for the template being rendered. ``request`` is ``None`` when
    rendering outside a request (e-mails). Later plugins override earlier keys. Since 0.1."""


@hookspec
def prepare_jinja_env(site: Site, env: jinja2.Environment) -> None:
    """Adjust the Jinja environment once at startup: add filters, globals, tests. Since 0.1."""


# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------


@hookspec
def register_models(site: Site) -> Iterable[type[Any]]:
    """Return the SQLAlchemy mapped classes this plugin owns (subclasses of
    :class:`mercato.core.db.Base`). Their tables are compared with the migrated schema
    and included in ``mercato db revision --autogenerate``. Since 0.1."""


@hookspec
def register_migrations(site: Site) -> Iterable[str | Path]:
    """Return Alembic ``versions`` folders. A plugin that owns tables ships a branch whose
    root revision has ``branch_labels=("<plugin id>",)``; ``mercato db upgrade`` upgrades
    every head. Since 0.1."""


# ---------------------------------------------------------------------------
# Events and background work
# ---------------------------------------------------------------------------


@hookspec
def register_event_handlers(site: Site) -> Iterable[EventHandler]:
    """Return :class:`~mercato.core.events.EventHandler` objects. Each gets a durable
    JetStream consumer; its database effects commit together with a processed-event
    marker, so an event's effects happen exactly once. Since 0.1."""


# ---------------------------------------------------------------------------
# Identity and files
# ---------------------------------------------------------------------------


@hookspec
def register_timer_handlers(site: Site) -> Iterable[TimerHandler]:
    """Return :class:`~mercato.core.timers.TimerHandler` objects: what runs timers of a kind
    when they fall due (``mercato.core.timers.schedule`` sets one). A handler runs inside the
    transaction that deletes its timer, on exactly one instance; it must do nothing when the
    work is already done or no longer applies. Since 0.1."""


@hookspec
def register_auth_providers(site: Site) -> Iterable[AuthProvider]:
    """Return :class:`~mercato.core.security.providers.AuthProvider` objects for external
    log-in (OAuth2 / OpenID Connect). Each appears on the log-in page and in
    ``GET /api/v1/auth/providers``; return none when the plugin is not configured. Since 0.1."""


@hookspec(firstresult=True)
def get_storage(site: Site) -> Storage | None:
    """Return the :class:`~mercato.core.storage.Storage` that keeps uploaded files
    (avatars, portfolio images, attachments). ``firstresult``: the first plugin to answer
    wins; the built-in local-disk storage answers last. Since 0.1."""


@hookspec(firstresult=True)
def get_search_backend(site: Site) -> SearchBackend | None:
    """Return the :class:`~mercato.core.search.SearchBackend` that indexes and searches
    projects, services and developers. ``firstresult``; the built-in ``search_sql`` answers
    last. Keep one backend object per site. Since 0.1."""


@hookspec(firstresult=True)
def get_recommender(site: Site) -> Recommender | None:
    """Return the :class:`~mercato.core.recommend.Recommender` that suggests projects to
    developers, developers for a project and services like a service. ``firstresult``; the
    built-in ``recommendations`` plugin answers last. Keep one recommender per site. Since 0.1."""


# ---------------------------------------------------------------------------
# Money
# ---------------------------------------------------------------------------


@hookspec
def register_payment_gateways(site: Site) -> Iterable[PaymentGateway]:
    """Return :class:`~mercato.core.payments.gateways.PaymentGateway` objects that charge
    clients, refund them and pay developers out. Each has a unique ``id``; requests name the
    gateway they use (``[payments] default_gateway`` when they name none). The built-in
    ``sandbox_payments`` registers ``sandbox``. Since 0.1."""


@hookspec(firstresult=True)
def get_fee_policy(site: Site) -> FeePolicy | None:
    """Return the :class:`~mercato.core.payments.fees.FeePolicy` that sets the platform's fee
    on each release and the client's fee on each funding. ``firstresult``; the built-in policy
    (percentages from ``[payments]``) answers last. Since 0.1."""


# ---------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------


@hookspec
def register_notification_channels(site: Site) -> Iterable[NotificationChannel]:
    """Return :class:`~mercato.core.notify.NotificationChannel` objects that carry notifications
    beyond the site (the bell and the notifications page). Each has a unique ``id``; people
    turn each channel on or off per category in their settings. The built-in
    ``notifications`` plugin registers ``email`` and ``webhook``. Since 0.1."""


@hookspec
def register_socket_handlers(site: Site) -> Iterable[SocketHandler]:
    """Return :class:`~mercato.core.socket.SocketHandler` objects for messages a page sends up
    its WebSocket ``/ws`` (``{"type": "typing", …}``): each names the ``type`` it answers and
    an async ``handle(user_id, message)`` returning a reply for that socket, or None. Types
    are unique; ``ping`` is the core's. Since 0.1."""


@hookspec
def on_presence_changed(site: Site, user_id: Any, online: bool) -> Awaitable[None] | None:
    """Called when someone's first live page opens (``online``) or their last one on this
    instance closes, after it is recorded; e.g. tell the people they talk to. May be async;
    errors are logged, never raised to the socket. Since 0.1."""


@hookspec
def validate_message(site: Site, sender_id: Any, conversation_id: Any, body: str) -> str | None:
    """Return a sentence saying why a chat message may not be sent (the sender sees it, and the
    message is refused with 400), or None to let it pass. Called for every new and edited
    message; e.g. warn about asking to be paid outside the platform. Since 0.1."""


# ---------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------


@hookspec
def validate_listing(site: Site, listing: dict[str, Any]) -> str | None:
    """A chance to reject a service listing's text (moderation, spam, off-platform payment).

    Called when a listing is created, updated or published, before the change is committed.
    ``listing`` is a plain dict of what the author wrote: ``developer_id`` (str), ``title``,
    ``description`` (Markdown), ``faq`` (``[{"question", "answer"}]``), ``packages``
    (``[{"tier", "name", "description", "features"}]``), ``addons`` (``[{"kind", "title"}]``)
    and ``requirements`` (the questions asked of buyers). Return ``None`` to allow it, or a
    reason string shown to the author. Collected: every plugin is asked, and any reason
    rejects the listing (HTTP 400 on the field ``content``, with every reason). Not async.
    Since 0.1."""


@hookspec
def register_report_subjects(site: Site) -> Iterable[ReportSubject]:
    """Return :class:`~mercato.core.moderation.ReportSubject` objects: kinds of content people
    can report (``listing``, ``review``, …), each with how an admin sees it and hides it.
    Kinds are unique across plugins. Since 0.1."""


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


@hookspec
def register_commands() -> Iterable[click.Command]:
    """Return click commands added to the ``mercato`` command. Inside one, get the running
    site's settings with ``mercato.cli.pass_site``. Since 0.1."""


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------


@hookspec
def on_startup(site: Site) -> Awaitable[None] | None:
    """Called once per process after the database and event backbone are ready, before
    the first request (web) or the first event (worker). Since 0.1."""


@hookspec
def seed_demo_data(site: Site) -> Awaitable[None] | None:
    """Called by ``mercato demo`` once the core's demo data (people, projects, services,
    contracts and their money) is in an empty site: add the plugin's own (reviews,
    conversations). May be async. Since 0.1."""


@hookspec
def on_shutdown(site: Site) -> Awaitable[None] | None:
    """Called once per process on shutdown, before the database and NATS close. Since 0.1."""
