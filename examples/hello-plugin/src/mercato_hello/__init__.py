"""mercato-hello: the smallest complete mercato plugin.

It shows every part a real plugin uses:

* settings — ``[plugins.hello] greeting = "Howdy"`` validated by :class:`HelloSettings`;
* routes — a themed page ``GET /hello`` and a JSON API under ``/api/v1/hello``;
* templates — ``hello.html``, plus an ``index.html`` that extends the theme's home page
  through the ``default:`` prefix instead of copying it;
* navigation — a "Hello" link in the main menu;
* models and migrations — two tables on the plugin's own Alembic branch (``hello``);
* events — the API emits ``hello.greeting_sent`` in the transaction that stores the
  greeting; the ``hello-replies`` handler answers it exactly once.

The package is found through the entry point ``hello`` in group ``mercato`` (see
``pyproject.toml``); that name is the plugin id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mercato import hookimpl
from mercato.core.events import Event, EventHandler, emit
from mercato.core.navigation import NavItem
from mercato.core.site import Site  # at runtime: Litestar resolves handler annotations

from .events import GreetingSent
from .models import Greeting, Reply

PLUGIN_ID = "hello"
PACKAGE_DIR = Path(__file__).parent


class HelloSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.hello]`` in mercato.toml."""

    greeting: str = "Hello"
    """The word the replies start with."""


def settings_of(site: Site) -> HelloSettings:
    settings: HelloSettings = site.plugin_settings(PLUGIN_ID)
    return settings


# ---------------------------------------------------------------------------
# API shapes
# ---------------------------------------------------------------------------


class NewGreeting(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /api/v1/hello/greetings``."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class GreetingOut(msgspec.Struct, kw_only=True):
    """A stored greeting; ``reply`` appears once the event handler has answered it."""

    id: uuid.UUID
    name: str
    created_at: datetime
    reply: str | None = None


def greeting_out(greeting: Greeting, reply: str | None = None) -> GreetingOut:
    return GreetingOut(id=greeting.id, name=greeting.name, created_at=greeting.created_at,
                       reply=reply)


async def list_greetings(site: Site) -> list[GreetingOut]:
    async with site.db.transaction() as session:
        rows = await session.execute(
            select(Greeting, Reply.text)
            .outerjoin(Reply, Reply.greeting_id == Greeting.id)
            .order_by(Greeting.created_at, Greeting.id)
        )
        return [greeting_out(greeting, text) for greeting, text in rows]


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------


@get("/hello", include_in_schema=False, name="hello:page")
async def hello_page(request: Request[Any, Any, Any], site: NamedDependency[Site]) -> Template:
    return await site.templates.page(
        request, "hello.html",
        {"greeting": settings_of(site).greeting, "greetings": await list_greetings(site)},
    )


@post("/api/v1/hello/greetings", tags=["hello"], summary="Send a greeting")
async def send_greeting(data: JSONBody[NewGreeting], site: NamedDependency[Site]) -> GreetingOut:
    # The row and its event commit together (transactional outbox): the event is
    # published only if the greeting is stored, and is never lost once it is.
    async with site.db.transaction() as session:
        greeting = Greeting(name=data.name)
        session.add(greeting)
        await session.flush()  # assigns id and created_at
        emit(session, Event.of(GreetingSent(greeting_id=greeting.id, name=greeting.name)))
    return greeting_out(greeting)


@get("/api/v1/hello/greetings", tags=["hello"], summary="List greetings and their replies")
async def get_greetings(site: NamedDependency[Site]) -> list[GreetingOut]:
    return await list_greetings(site)


# ---------------------------------------------------------------------------
# Hook implementations
# ---------------------------------------------------------------------------


@hookimpl
def register_settings() -> dict[str, type[msgspec.Struct]]:
    return {PLUGIN_ID: HelloSettings}


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [hello_page, send_greeting, get_greetings]


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "templates"]


@hookimpl
def register_nav_items(site: Site) -> list[NavItem]:
    return [NavItem(key="hello", label="Hello", href="/hello", order=50)]


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [Greeting, Reply]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


@hookimpl
def register_event_handlers(site: Site) -> list[EventHandler]:
    async def reply(event: Event, session: AsyncSession) -> None:
        # Write only through `session`: it commits together with the processed-event
        # marker, so a redelivered event never produces a second reply.
        sent = event.payload_as(GreetingSent)
        text = f"{settings_of(site).greeting}, {sent.name}!"
        session.add(Reply(greeting_id=sent.greeting_id, text=text))

    return [EventHandler(id="hello-replies", events=(GreetingSent.event_type,), handle=reply)]
