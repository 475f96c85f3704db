"""Helpers for the marketplace API tests (projects, proposals, contracts): a market app with
relaxed sign-up limits, people in each role, request bodies, an event recorder and truly
concurrent requests across app instances.

Built on the accounts helpers in ``tests/integration/test_accounts_api.py`` (``Apps``, ``App``,
``register``); import the ``apps`` fixture pattern from there (define it in the test module).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa

from mercato import hookimpl
from mercato.core.events import Event, EventHandler
from mercato.core.site import Site
from tests.integration.test_accounts_api import (
    API,
    RELAXED_LOGIN_LIMITS,
    App,
    Apps,
    Person,
    assert_problem,
    link_token,
    register,
)

__all__ = [
    "API",
    "App",
    "Apps",
    "EventLog",
    "Person",
    "assert_problem",
    "bid",
    "client",
    "developer",
    "market_settings",
    "open_market",
    "post_project",
    "project_body",
    "proposal_body",
    "send_concurrently",
    "set_row",
    "verify_email",
]

MARKET_ACCOUNTS: dict[str, Any] = {
    "require_verified_email": False,
    "registrations_per_hour": 10_000,
    **RELAXED_LOGIN_LIMITS,
}
"""Most tests are not about the e-mail gate or sign-up limits."""

_counter = itertools.count(1)


class EventLog:
    """A plugin recording every project, proposal and contract event the site publishes (the
    relay deletes outbox rows once published, so the stream is where events can be seen)."""

    def __init__(self) -> None:
        self.events: dict[uuid.UUID, Event] = {}

    async def _handle(self, event: Event, session: Any) -> None:
        self.events[event.id] = event

    @hookimpl
    def register_event_handlers(self, site: Site) -> list[EventHandler]:
        return [
            EventHandler(
                id="test-market-log",
                events=("project.*", "proposal.*", "contract.*"),
                handle=self._handle,
            )
        ]

    def of(self, event_type: str, **payload: Any) -> list[Event]:
        """Events of ``event_type`` whose payload has every ``payload`` item (values as strings)."""
        return [
            e
            for e in self.events.values()
            if e.type == event_type and all(str(e.payload.get(k)) == str(v) for k, v in payload.items())
        ]

    async def wait_for(self, check: Callable[[], bool], *, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                types = sorted(e.type for e in self.events.values())
                raise AssertionError(f"events not seen in time; seen: {types}")
            await asyncio.sleep(0.05)


async def market_settings(apps: Apps, *, require_verified_email: bool = False) -> Any:
    return await apps.settings(accounts={**MARKET_ACCOUNTS, "require_verified_email": require_verified_email})


async def open_market(
    apps: Apps, *, require_verified_email: bool = False, events: EventLog | None = None, settings: Any = None
) -> App:
    """A started app on a fresh database (or on ``settings``' database: a second instance)."""
    if settings is None:
        settings = await market_settings(apps, require_verified_email=require_verified_email)
    extra = [("market-event-log", events)] if events is not None else None
    return await apps.open(settings, extra=extra)


async def client(app: App, name: str = "Client") -> Person:
    """Someone with the client role only."""
    return await register(app.client, f"client{next(_counter)}@example.com", name=name, roles=("client",))


async def developer(app: App, name: str = "Developer", *, skills: list[str] | None = None) -> Person:
    """Someone with the developer role only (and ``skills`` on their profile)."""
    person = await register(app.client, f"dev{next(_counter)}@example.com", name=name, roles=("developer",))
    if skills:
        response = await app.client.patch(f"{API}/me", headers=person.auth, json={"skills": skills})
        assert response.status_code == 200, response.text
    return person


async def verify_email(app: App, person: Person) -> None:
    """Open the verification link the site mailed ``person``."""
    mails = app.mails_to(person.email)
    assert mails, f"no mail to {person.email}"
    token = link_token(mails[-1], "/verify-email")
    response = await app.client.post(f"{API}/auth/verify-email", json={"token": token})
    assert response.status_code == 200, response.text


def project_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Build an invoicing REST API",
        "description": "A small service that stores invoices and sends reminders by e-mail.",
        "category": "web-backend",
        "skills": ["python"],
        "budget": {"type": "fixed", "min": 100_00, "max": 500_00, "currency": "USD"},
        "duration": "1_4_weeks",
    }
    body.update(changes)
    return body


async def post_project(app: App, owner: Person, **changes: Any) -> dict[str, Any]:
    response = await app.client.post(f"{API}/projects", headers=owner.auth, json=project_body(**changes))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def proposal_body(project: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cover_letter": "I have built several invoicing services like this one.",
        "amount": 300_00,
        "currency": project["budget"]["currency"],
        "duration_days": 14,
        "answers": [f"Answer {i}" for i, _ in enumerate(project["screening_questions"], 1)],
    }
    body.update(changes)
    return body


async def bid(app: App, dev: Person, project: dict[str, Any], **changes: Any) -> dict[str, Any]:
    response = await app.client.post(
        f"{API}/projects/{project['id']}/proposals", headers=dev.auth, json=proposal_body(project, **changes)
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def set_row(app: App, model: type[Any], row_id: str, **values: Any) -> None:
    """Change a row behind the API's back (for states no route reaches, e.g. ``completed``)."""

    async def change() -> None:
        async with app.site.db.transaction() as session:
            await session.execute(sa.update(model).where(model.id == uuid.UUID(row_id)).values(**values))

    await app.on_loop(change)


async def _send_on(app: App, requests: list[tuple[str, str, dict[str, str], Any]]) -> list[tuple[int, Any]]:
    """Send ``requests`` at the same time on ``app``'s own loop (in a worker thread of the test)."""
    asgi = app.client.app

    async def send_all() -> list[tuple[int, Any]]:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            responses = await asyncio.gather(
                *(
                    http.request(method, url, headers=headers, json=body)
                    for method, url, headers, body in requests
                )
            )
        return [(r.status_code, r.json() if r.content else None) for r in responses]

    return await app.on_loop(send_all)


async def send_concurrently(*requests: tuple[App, str, str, dict[str, str], Any]) -> list[tuple[int, Any]]:
    """``(app, method, url, headers, json)`` requests sent at the same time, each through its app
    (two instances of one site: two engines, so the database's own locks decide); ``(status,
    body)`` pairs in order."""
    by_app: dict[int, list[int]] = {}
    for index, request in enumerate(requests):
        by_app.setdefault(id(request[0]), []).append(index)
    apps = {id(r[0]): r[0] for r in requests}
    answers = await asyncio.gather(
        *(_send_on(apps[key], [requests[i][1:] for i in indices]) for key, indices in by_app.items())  # type: ignore[misc]
    )
    result: list[tuple[int, Any]] = [(0, None)] * len(requests)
    for (_, indices), replies in zip(by_app.items(), answers, strict=True):
        for index, reply in zip(indices, replies, strict=True):
            result[index] = reply
    return result
