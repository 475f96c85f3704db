"""The accounts REST API, driven over HTTP like a client would: sign-up, log-in, tokens,
e-mailed links (read from the ``file`` mail backend's mailbox), ``/me``, portfolios and the
skills taxonomy.

Every test runs a real app (``AsyncTestClient`` runs it, lifespan included, on its own loop in
a portal thread) on a fresh migrated database of whatever kind the fixtures give. Helpers
here are shared with ``test_accounts_security.py``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from mercato import create_app
from mercato.core.accounts.profiles import load_skill_catalogue
from mercato.core.mail import StoredMail
from mercato.core.pagination import encode_cursor
from mercato.core.plugins import build_plugin_manager
from mercato.core.settings import Settings
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database

T = TypeVar("T")
API = "/api/v1"
PASSWORD = "Tangerine-Orbit-4417"
NEW_PASSWORD = "Quiet-Marmot-Lantern-92"
PROBLEM = "application/problem+json"
RELAXED_LOGIN_LIMITS = {"login_attempts_per_minute": 1000, "login_attempts_per_account": 1000}
"""For tests about something else than rate limits (they log in more than 10 times a minute)."""


# ---------------------------------------------------------------------------
# Helpers (also used by test_accounts_security.py)
# ---------------------------------------------------------------------------


@dataclass
class App:
    """A running app: its HTTP client and its site."""

    client: AsyncTestClient[Any]
    site: Site

    async def on_loop(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the app's event loop (the site's engine and NATS live there)."""
        return await asyncio.to_thread(self.client.blocking_portal.call, fn, *args)

    async def concurrently(self, *requests: tuple[str, str, dict[str, Any]]) -> list[tuple[int, Any]]:
        """Send ``(method, url, json)`` requests at the same time, on the app's own loop (the test
        client sends one at a time); returns ``(status, body)`` pairs in order."""
        app = self.client.app

        async def send_all() -> list[tuple[int, Any]]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
                responses = await asyncio.gather(*(client.request(method, url, json=body)
                                                   for method, url, body in requests))
            return [(r.status_code, r.json() if r.content else None) for r in responses]

        return await self.on_loop(send_all)

    def mails_to(self, address: str) -> list[StoredMail]:
        """Mails the site wrote for ``address``, newest first."""
        return [m for m in self.site.mail.mailbox() if m.to.casefold() == address.casefold()]


class Apps:
    """Starts apps for one test (``open``) and stops them all at the end."""

    def __init__(self, make_settings: MakeSettings, databases: Databases) -> None:
        self.make_settings = make_settings
        self.databases = databases
        self.opened: list[tuple[AsyncTestClient[Any], Settings]] = []

    async def settings(self, **overrides: Any) -> Settings:
        """Settings on a fresh migrated database (``overrides`` as for ``make_settings``)."""
        settings = self.make_settings(**overrides)
        return _with_database(settings, await self.databases.create_migrated(settings))

    async def open(self, settings: Settings | None = None, *, extra: list[tuple[str, object]] | None = None,
                   **overrides: Any) -> App:
        """A started app; pass the same ``settings`` twice for two instances of one site."""
        if settings is None:
            settings = await self.settings(**overrides)
        pm = build_plugin_manager(settings, extra=extra) if extra else None
        site = Site(settings, pm=pm)
        client: AsyncTestClient[Any] = AsyncTestClient(create_app(site=site))
        await client.__aenter__()
        self.opened.append((client, settings))
        return App(client, site)

    async def close(self) -> None:
        opened, self.opened = self.opened, []
        for client, _ in reversed(opened):
            await client.__aexit__(None, None, None)
        if opened:
            await _delete_streams(opened[0][1].events.nats_url, {s.events.stream for _, s in opened})


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


@dataclass
class Person:
    """Someone who signed up, with the tokens of their latest session."""

    id: str
    email: str
    password: str
    access: str
    refresh: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.access)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    """The (unverified) payload of a JWT."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def register(client: Any, email: str, *, password: str = PASSWORD, name: str = "Ada Lovelace",
                   roles: tuple[str, ...] = ("client", "developer")) -> Person:
    response = await client.post(f"{API}/auth/register", json={
        "email": email, "password": password, "display_name": name, "roles": list(roles)})
    assert response.status_code == 201, response.text
    tokens = response.json()
    return Person(id=claims_of(tokens["access_token"])["sub"], email=email, password=password,
                  access=tokens["access_token"], refresh=tokens["refresh_token"])


async def login(client: Any, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_problem(response: Any, status: int, *, field: str | None = None) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem of ``status`` (naming ``field`` if given)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if field is not None:
        fields = [str(error.get("field")) for error in body.get("errors", [])]
        assert any(f == field or f.startswith((f"{field}[", f"{field}.")) for f in fields), (
            f"expected a field error on {field!r}, got {fields}: {body}")
    return body


def link_token(mail: StoredMail, path: str) -> str:
    """The token of the ``<base_url><path>?token=…`` link in ``mail``."""
    found = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_\-]+)", mail.text)
    assert found, f"no {path} link in mail {mail.subject!r}:\n{mail.text}"
    return found.group(1)


async def wait_for_mail(app: App, address: str, count: int, *, timeout: float = 5.0) -> list[StoredMail]:
    """The mails to ``address`` once there are ``count`` (some are sent after the response)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        mails = app.mails_to(address)
        if len(mails) >= count or asyncio.get_running_loop().time() > deadline:
            subjects = [m.subject for m in mails]
            assert len(mails) == count, f"expected {count} mails to {address}, got {subjects}"
            return mails
        await asyncio.sleep(0.05)


def png_bytes(size: tuple[int, int] = (24, 16), *, noise: bool = False) -> bytes:
    """A real PNG; ``noise`` makes it incompressible (large)."""
    image = Image.new("RGB", size, (200, 30, 60))
    if noise:
        rng = random.Random(7)
        image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                       for _ in range(size[0] * size[1])])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def app(apps: Apps) -> App:
    return await apps.open(accounts=RELAXED_LOGIN_LIMITS)


# ---------------------------------------------------------------------------
# Sign-up and log-in
# ---------------------------------------------------------------------------


async def test_register_returns_tokens_that_work(app: App) -> None:
    response = await app.client.post(f"{API}/auth/register", json={
        "email": "ada@example.com", "password": PASSWORD, "display_name": "  Ada   Lovelace ",
        "roles": ["developer"]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    assert body["access_token"].count(".") == 2
    assert len(body["refresh_token"]) >= 32
    me = await app.client.get(f"{API}/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    data = me.json()
    assert data["email"] == "ada@example.com"
    assert data["display_name"] == "Ada Lovelace"
    assert data["roles"] == ["developer"]
    assert data["email_verified"] is False
    assert data["has_password"] is True
    assert data["status"] == "active"


async def test_register_rejects_a_duplicate_email_whatever_its_case(app: App) -> None:
    await register(app.client, "grace@example.com")
    again = await app.client.post(f"{API}/auth/register", json={
        "email": "GRACE@Example.COM", "password": "Another-Strong-Pass-77", "display_name": "G",
        "roles": ["client"]})
    assert_problem(again, 409)
    login_ok = await app.client.post(f"{API}/auth/login", json={"email": "Grace@EXAMPLE.com",
                                                                "password": PASSWORD})
    assert login_ok.status_code == 200, "log-in must ignore the e-mail's case too"


@pytest.mark.parametrize(("changes", "field"), [
    ({"password": "password123"}, "password"),
    ({"password": "Ab1!x"}, "password"),
    ({"password": "AdaLovelace"}, "password"),  # the person's own name
    ({"password": "qwertyuiop"}, "password"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "ada@"}, "email"),
    ({"roles": ["admin"]}, "roles"),
    ({"roles": []}, "roles"),
    ({"display_name": "   "}, "display_name"),
])
async def test_register_validation_errors_name_the_field(app: App, changes: dict[str, Any],
                                                         field: str) -> None:
    body = {"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada Lovelace",
            "roles": ["client"], **changes}
    response = await app.client.post(f"{API}/auth/register", json=body)
    assert_problem(response, 400, field=field)
    # nothing was created: the address is still free
    assert (await app.client.post(f"{API}/auth/register", json={
        "email": "ada@example.com", "password": PASSWORD, "display_name": "Ada", "roles": ["client"],
    })).status_code == 201


async def test_register_refuses_unknown_fields(app: App) -> None:
    response = await app.client.post(f"{API}/auth/register", json={
        "email": "ada@example.com", "password": PASSWORD, "display_name": "Ada", "roles": ["client"],
        "is_admin": True})
    assert_problem(response, 400)


async def test_login_succeeds_and_failures_are_indistinguishable(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    tokens = await login(app.client, "ada@example.com")
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert claims_of(tokens["access_token"])["sub"] == ada.id
    assert claims_of(tokens["access_token"])["sid"] != claims_of(ada.access)["sid"], "a new session"

    wrong = await app.client.post(f"{API}/auth/login", json={"email": "ada@example.com",
                                                             "password": "Wrong-Password-123"})
    unknown = await app.client.post(f"{API}/auth/login", json={"email": "nobody@example.com",
                                                               "password": "Wrong-Password-123"})
    assert_problem(wrong, 401)
    assert_problem(unknown, 401)
    assert wrong.content == unknown.content
    assert wrong.headers["content-type"] == unknown.headers["content-type"]
    assert b"ada@example.com" not in wrong.content


# ---------------------------------------------------------------------------
# /me
# ---------------------------------------------------------------------------


async def test_me_requires_authentication(app: App) -> None:
    assert_problem(await app.client.get(f"{API}/me"), 401)
    assert_problem(await app.client.patch(f"{API}/me", json={"headline": "x"}), 401)


async def test_patch_me_skills_by_slug_and_alias(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    response = await app.client.patch(f"{API}/me", headers=ada.auth,
                                      json={"skills": ["Python", "js", "py", "python3"]})
    assert response.status_code == 200, response.text
    assert [s["slug"] for s in response.json()["profile"]["skills"]] == ["python", "javascript"]

    unknown = await app.client.patch(f"{API}/me", headers=ada.auth,
                                     json={"skills": ["python", "cobol-9000"]})
    body = assert_problem(unknown, 400, field="skills")
    assert "cobol-9000" in json.dumps(body)
    me = (await app.client.get(f"{API}/me", headers=ada.auth)).json()
    assert [s["slug"] for s in me["profile"]["skills"]] == ["python", "javascript"], "unchanged after a 400"

    # absent fields stay as they are
    await app.client.patch(f"{API}/me", headers=ada.auth, json={"headline": "Analyst"})
    me = (await app.client.get(f"{API}/me", headers=ada.auth)).json()
    assert me["profile"]["headline"] == "Analyst"
    assert [s["slug"] for s in me["profile"]["skills"]] == ["python", "javascript"]


async def test_patch_me_hourly_rate_is_money(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    response = await app.client.patch(f"{API}/me", headers=ada.auth,
                                      json={"hourly_rate": {"amount": 7550, "currency": "EUR"}})
    assert response.status_code == 200, response.text
    assert response.json()["profile"]["hourly_rate"] == {"amount": 7550, "currency": "EUR"}
    public = (await app.client.get(f"{API}/users/{ada.id}")).json()
    assert public["profile"]["hourly_rate"] == {"amount": 7550, "currency": "EUR"}

    for bad in ({"amount": -1, "currency": "EUR"}, {"amount": 12.5, "currency": "EUR"},
                {"amount": 100, "currency": "euro"}, {"amount": 100_000_01, "currency": "EUR"}):
        assert_problem(await app.client.patch(f"{API}/me", headers=ada.auth, json={"hourly_rate": bad}),
                       400, field="hourly_rate")
    default_currency = await app.client.patch(f"{API}/me", headers=ada.auth,
                                              json={"hourly_rate": {"amount": 5000}})
    assert default_currency.json()["profile"]["hourly_rate"] == {"amount": 5000, "currency": "USD"}
    cleared = await app.client.patch(f"{API}/me", headers=ada.auth, json={"hourly_rate": None})
    assert cleared.json()["profile"]["hourly_rate"] is None


async def test_patch_me_bio_markdown_is_sanitised(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    bio = ("Hello **world**\n\n<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n"
           "[click](javascript:alert(1)) and [home](https://example.com)")
    response = await app.client.patch(f"{API}/me", headers=ada.auth, json={"bio": bio})
    assert response.status_code == 200, response.text
    profile = response.json()["profile"]
    assert profile["bio"] == bio, "the Markdown is kept as written"
    html = profile["bio_html"]
    assert "<strong>world</strong>" in html
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "onerror" not in html.lower() or "&lt;img" in html
    assert 'href="javascript:' not in html.lower()
    assert 'href="https://example.com"' in html
    public = (await app.client.get(f"{API}/users/{ada.id}")).json()
    assert public["profile"]["bio_html"] == html


async def test_patch_me_timezone_and_links_are_checked(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    mars = await app.client.patch(f"{API}/me", headers=ada.auth, json={"timezone": "Mars/Olympus_Mons"})
    assert_problem(mars, 400, field="timezone")
    ok = await app.client.patch(f"{API}/me", headers=ada.auth, json={"timezone": "Europe/Lisbon"})
    assert ok.json()["profile"]["timezone"] == "Europe/Lisbon"
    for bad in ("javascript:alert(1)", "ftp://github.com/ada", "github.com/ada", "https://"):
        assert_problem(await app.client.patch(f"{API}/me", headers=ada.auth, json={"github_url": bad}),
                       400, field="github_url")
    ok = await app.client.patch(f"{API}/me", headers=ada.auth, json={"github_url": "https://github.com/ada",
                                                                     "website_url": "http://ada.example"})
    assert ok.json()["profile"]["github_url"] == "https://github.com/ada"
    assert ok.json()["profile"]["website_url"] == "http://ada.example"
    data_url = await app.client.patch(f"{API}/me", headers=ada.auth, json={"website_url": "data:text/html,x"})
    assert_problem(data_url, 400, field="website_url")
    cleared = await app.client.patch(f"{API}/me", headers=ada.auth, json={"github_url": ""})
    assert cleared.json()["profile"]["github_url"] == ""


async def test_patch_me_cannot_grant_admin_or_touch_private_fields(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    for sneaky in ({"roles": ["admin"]}, {"is_admin": True}, {"email": "x@example.com"},
                   {"status": "active"}, {"email_verified": True}):
        assert_problem(await app.client.patch(f"{API}/me", headers=ada.auth, json=sneaky), 400)
    me = (await app.client.get(f"{API}/me", headers=ada.auth)).json()
    assert me["roles"] == ["client", "developer"]
    assert me["email"] == "ada@example.com"
    assert me["email_verified"] is False


async def test_public_profile_has_no_private_fields(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    response = await app.client.get(f"{API}/users/{ada.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == ada.id
    assert not {"email", "has_password", "linked_providers", "status", "email_verified"} & set(body)
    assert "ada@example.com" not in response.text
    assert_problem(await app.client.get(f"{API}/users/{uuid.uuid4()}"), 404)


# ---------------------------------------------------------------------------
# Tokens: refresh rotation, logout
# ---------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    first = await app.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh})
    assert first.status_code == 200, first.text
    pair1 = first.json()
    assert pair1["refresh_token"] != ada.refresh
    assert (await app.client.get(f"{API}/me", headers=bearer(pair1["access_token"]))).status_code == 200

    second = await app.client.post(f"{API}/auth/refresh", json={"refresh_token": pair1["refresh_token"]})
    assert second.status_code == 200, second.text
    pair2 = second.json()
    assert (await app.client.get(f"{API}/me", headers=bearer(pair2["access_token"]))).status_code == 200

    # the first refresh token again: it leaked (or was replayed) - the session ends
    reused = await app.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh})
    assert_problem(reused, 401)
    assert_problem(await app.client.get(f"{API}/me", headers=bearer(pair2["access_token"])), 401)
    assert_problem(await app.client.get(f"{API}/me", headers=bearer(ada.access)), 401)
    last = await app.client.post(f"{API}/auth/refresh", json={"refresh_token": pair2["refresh_token"]})
    assert_problem(last, 401)


async def test_refresh_rejects_unknown_tokens(app: App) -> None:
    assert_problem(await app.client.post(f"{API}/auth/refresh", json={"refresh_token": "x" * 43}), 401)
    assert_problem(await app.client.post(f"{API}/auth/refresh", json={}), 400, field="refresh_token")


async def test_refresh_keeps_other_sessions(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    other = await login(app.client, ada.email)
    await app.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh})
    await app.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh})  # reuse
    assert (await app.client.get(f"{API}/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_logout_rejects_the_access_token_at_once(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    other = await login(app.client, ada.email)
    response = await app.client.post(f"{API}/auth/logout", headers=ada.auth)
    assert response.status_code == 200, response.text
    assert_problem(await app.client.get(f"{API}/me", headers=ada.auth), 401)
    assert_problem(await app.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh}), 401)
    assert (await app.client.get(f"{API}/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_logout_by_refresh_token(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    response = await app.client.post(f"{API}/auth/logout", json={"refresh_token": ada.refresh})
    assert response.status_code == 200, response.text
    assert_problem(await app.client.get(f"{API}/me", headers=ada.auth), 401)
    assert_problem(await app.client.post(f"{API}/auth/logout"), 401)


# ---------------------------------------------------------------------------
# E-mailed links
# ---------------------------------------------------------------------------


async def test_email_verification_link_works_once(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    mails = app.mails_to("ada@example.com")
    assert len(mails) == 1
    token = link_token(mails[0], "/verify-email")
    assert_problem(await app.client.post(f"{API}/auth/password-reset/confirm",
                                         json={"token": token, "new_password": NEW_PASSWORD}), 400)
    response = await app.client.post(f"{API}/auth/verify-email", json={"token": token})
    assert response.status_code == 200, response.text
    assert (await app.client.get(f"{API}/me", headers=ada.auth)).json()["email_verified"] is True
    assert_problem(await app.client.post(f"{API}/auth/verify-email", json={"token": token}), 400)
    assert_problem(await app.client.post(f"{API}/auth/verify-email", json={"token": "y" * 43}), 400)


async def test_resending_verification_invalidates_the_older_link(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    old = link_token(app.mails_to(ada.email)[0], "/verify-email")
    resent = await app.client.post(f"{API}/auth/verify-email/resend", headers=ada.auth)
    assert resent.status_code == 202, resent.text
    mails = app.mails_to(ada.email)
    assert len(mails) == 2
    new = link_token(mails[0], "/verify-email")
    assert new != old
    assert_problem(await app.client.post(f"{API}/auth/verify-email", json={"token": old}), 400)
    assert (await app.client.post(f"{API}/auth/verify-email", json={"token": new})).status_code == 200


async def test_password_reset_flow(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    second_session = await login(app.client, ada.email)
    before = len(app.site.mail.mailbox())

    reset = f"{API}/auth/password-reset/request"
    unknown = await app.client.post(reset, json={"email": "nobody@example.com"})
    known = await app.client.post(reset, json={"email": "ADA@example.com"})
    assert unknown.status_code == known.status_code == 202
    assert unknown.content == known.content
    mails = await wait_for_mail(app, "ada@example.com", 2)
    await asyncio.sleep(0.2)
    assert len(app.site.mail.mailbox()) == before + 1, "exactly one mail, to the known address"
    assert app.mails_to("nobody@example.com") == []
    token = link_token(mails[0], "/reset-password")

    weak = await app.client.post(f"{API}/auth/password-reset/confirm",
                                 json={"token": token, "new_password": "password123"})
    assert_problem(weak, 400, field="new_password")
    ok = await app.client.post(f"{API}/auth/password-reset/confirm",
                               json={"token": token, "new_password": NEW_PASSWORD})
    assert ok.status_code == 200, ok.text

    old_login = await app.client.post(f"{API}/auth/login", json={"email": ada.email, "password": PASSWORD})
    assert_problem(old_login, 401)
    for access in (ada.access, second_session["access_token"]):
        assert_problem(await app.client.get(f"{API}/me", headers=bearer(access)), 401)
    assert_problem(await app.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh}), 401)
    again = await app.client.post(f"{API}/auth/password-reset/confirm",
                                  json={"token": token, "new_password": "Another-Fresh-Pass-31"})
    assert_problem(again, 400)
    tokens = await login(app.client, ada.email, NEW_PASSWORD)
    me = (await app.client.get(f"{API}/me", headers=bearer(tokens["access_token"]))).json()
    assert me["email_verified"] is True, "the reset link proved the address"


async def test_a_newer_reset_link_voids_the_older_one(app: App) -> None:
    await register(app.client, "ada@example.com")
    await app.client.post(f"{API}/auth/password-reset/request", json={"email": "ada@example.com"})
    first = link_token((await wait_for_mail(app, "ada@example.com", 2))[0], "/reset-password")
    await app.client.post(f"{API}/auth/password-reset/request", json={"email": "ada@example.com"})
    second = link_token((await wait_for_mail(app, "ada@example.com", 3))[0], "/reset-password")
    assert first != second
    assert_problem(await app.client.post(f"{API}/auth/password-reset/confirm",
                                         json={"token": first, "new_password": NEW_PASSWORD}), 400)
    assert (await app.client.post(f"{API}/auth/password-reset/confirm",
                                  json={"token": second, "new_password": NEW_PASSWORD})).status_code == 200


async def test_change_password_keeps_this_session_and_ends_the_others(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    other = await login(app.client, ada.email)

    wrong = await app.client.post(f"{API}/me/password", headers=ada.auth, json={
        "current_password": "Not-My-Password-9", "new_password": NEW_PASSWORD})
    assert_problem(wrong, 400, field="current_password")
    weak = await app.client.post(f"{API}/me/password", headers=ada.auth,
                                 json={"current_password": PASSWORD, "new_password": "password123"})
    assert_problem(weak, 400, field="new_password")
    assert (await app.client.get(f"{API}/me", headers=bearer(other["access_token"]))).status_code == 200

    ok = await app.client.post(f"{API}/me/password", headers=ada.auth,
                               json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert ok.status_code == 200, ok.text
    assert (await app.client.get(f"{API}/me", headers=ada.auth)).status_code == 200
    refreshed = await app.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh})
    assert refreshed.status_code == 200
    assert_problem(await app.client.get(f"{API}/me", headers=bearer(other["access_token"])), 401)
    other_refresh = await app.client.post(f"{API}/auth/refresh",
                                          json={"refresh_token": other["refresh_token"]})
    assert_problem(other_refresh, 401)
    old = await app.client.post(f"{API}/auth/login", json={"email": ada.email, "password": PASSWORD})
    assert_problem(old, 401)
    await login(app.client, ada.email, NEW_PASSWORD)
    notices = [m for m in await wait_for_mails(app, ada.email, 2) if "password" in m.subject.lower()]
    assert len(notices) == 1, "the owner is told once that the password changed"
    assert "/forgot-password" in notices[0].text
    assert NEW_PASSWORD not in notices[0].text


async def wait_for_mails(app: App, address: str, count: int) -> list[StoredMail]:
    """Mails sent after commit arrive in the background; wait a little for them."""
    for _ in range(50):
        mails = app.mails_to(address)
        if len(mails) >= count:
            return mails
        await asyncio.sleep(0.05)
    return app.mails_to(address)


async def test_change_email_flow(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    await register(app.client, "taken@example.com", name="Someone Else")

    missing = await app.client.post(f"{API}/me/email", headers=ada.auth,
                                    json={"new_email": "ada@new.example"})
    assert_problem(missing, 400)
    wrong = await app.client.post(f"{API}/me/email", headers=ada.auth,
                                  json={"new_email": "ada@new.example", "password": "Not-My-Password-9"})
    assert_problem(wrong, 400)
    assert_problem(await app.client.post(f"{API}/me/email", headers=ada.auth,
                                         json={"new_email": "TAKEN@example.com", "password": PASSWORD}), 409)
    assert_problem(await app.client.post(f"{API}/me/email", headers=ada.auth,
                                         json={"new_email": "Ada@Example.com", "password": PASSWORD}),
                   400, field="new_email")
    assert app.mails_to("ada@new.example") == []

    ok = await app.client.post(f"{API}/me/email", headers=ada.auth,
                               json={"new_email": "ada@new.example", "password": PASSWORD})
    assert ok.status_code == 202, ok.text
    mails = app.mails_to("ada@new.example")
    assert len(mails) == 1
    token = link_token(mails[0], "/confirm-email")
    assert (await app.client.get(f"{API}/me", headers=ada.auth)).json()["email"] == "ada@example.com", (
        "nothing changes before the link is opened")
    old_mails = len(app.mails_to("ada@example.com"))

    confirmed = await app.client.post(f"{API}/auth/confirm-email", json={"token": token})
    assert confirmed.status_code == 200, confirmed.text
    me = (await app.client.get(f"{API}/me", headers=ada.auth)).json()
    assert me["email"] == "ada@new.example"
    assert me["email_verified"] is True
    notices = app.mails_to("ada@example.com")
    assert len(notices) == old_mails + 1, "the old address is told"
    assert "ada@new.example" not in notices[0].text, "the notice masks the new address"
    assert "new.example" in notices[0].text
    assert_problem(await app.client.post(f"{API}/auth/confirm-email", json={"token": token}), 400)

    await login(app.client, "ada@new.example")
    assert_problem(await app.client.post(f"{API}/auth/login", json={"email": "ada@example.com",
                                                                     "password": PASSWORD}), 401)
    # the old address is free again
    await register(app.client, "ada@example.com", name="New Ada")


async def test_change_email_field_error_names_the_body_field(app: App) -> None:
    """The 400 for a wrong password must name ``password``: that is the field of this body."""
    ada = await register(app.client, "ada@example.com")
    wrong = await app.client.post(f"{API}/me/email", headers=ada.auth,
                                  json={"new_email": "ada@new.example", "password": "Not-My-Password-9"})
    assert_problem(wrong, 400, field="password")
    wrong_delete = await app.client.request("DELETE", f"{API}/me", headers=ada.auth,
                                            json={"password": "Not-My-Password-9"})
    assert_problem(wrong_delete, 400, field="password")


# ---------------------------------------------------------------------------
# Deleting an account
# ---------------------------------------------------------------------------


async def test_delete_account(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    bob = await register(app.client, "bob@example.com", name="Bob")
    await app.client.patch(f"{API}/me", headers=ada.auth, json={
        "headline": "Secret headline", "bio": "Private **bio**", "skills": ["python"],
        "hourly_rate": {"amount": 9000, "currency": "EUR"}})
    item = (await app.client.post(f"{API}/users/{ada.id}/portfolio", headers=ada.auth,
                                  json={"title": "My thing"})).json()
    image = await app.client.post(f"{API}/portfolio/{item['id']}/images", headers=ada.auth,
                                  files={"file": ("a.png", png_bytes(), "image/png")})
    assert image.status_code == 201, image.text
    media_url = image.json()["images"][0]["url"]
    assert (await app.client.get(media_url)).status_code == 200

    assert_problem(await app.client.request("DELETE", f"{API}/me", headers=ada.auth), 400)
    assert_problem(await app.client.request("DELETE", f"{API}/me", headers=ada.auth,
                                            json={"password": "Not-My-Password-9"}), 400)
    assert (await app.client.get(f"{API}/users/{ada.id}")).status_code == 200, "still there after refusals"

    deleted = await app.client.request("DELETE", f"{API}/me", headers=ada.auth, json={"password": PASSWORD})
    assert deleted.status_code == 200, deleted.text

    assert_problem(await app.client.get(f"{API}/users/{ada.id}"), 404)
    assert_problem(await app.client.get(f"{API}/users/{ada.id}/portfolio"), 404)
    assert_problem(await app.client.get(f"{API}/me", headers=ada.auth), 401)
    assert_problem(await app.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh}), 401)
    old = await app.client.post(f"{API}/auth/login", json={"email": ada.email, "password": PASSWORD})
    assert_problem(old, 401)
    assert (await app.client.get(media_url)).status_code == 404, "uploaded files are removed"
    # the portfolio item is gone for everyone, its owner included
    assert_problem(await app.client.patch(f"{API}/portfolio/{item['id']}", headers=bob.auth,
                                          json={"title": "x"}), 404)

    # what stays of the row is anonymous
    stored = await app.on_loop(stored_account, app.site, ada.id)
    assert stored["user"] == {"email": f"deleted-{uuid.UUID(ada.id).hex}@invalid",
                              "display_name": "Deleted user", "password_hash": None, "status": "deleted"}
    assert stored["rows"] == {"profiles": 0, "user_skills": 0, "portfolio_items": 0, "account_tokens": 0,
                              "live_sessions": 0}

    # the address is free, and a new account starts empty
    fresh = await register(app.client, "ada@example.com", name="Ada Again")
    assert fresh.id != ada.id
    me = (await app.client.get(f"{API}/me", headers=fresh.auth)).json()
    assert me["profile"]["headline"] == ""
    assert me["profile"]["skills"] == []
    assert me["profile"]["hourly_rate"] is None
    assert (await app.client.get(f"{API}/users/{fresh.id}/portfolio")).json()["items"] == []
    # nothing the old account said is served anywhere we can look
    for url in (f"{API}/users/{fresh.id}", f"{API}/users/{bob.id}", f"{API}/me"):
        text = (await app.client.get(url, headers=bob.auth)).text
        assert "Secret headline" not in text
        assert "Private" not in text


async def stored_account(site: Site, user_id: str) -> dict[str, Any]:
    """The user row and how many rows of personal data it still has (run on the app loop)."""
    from sqlalchemy import func, select

    from mercato.core.accounts.models import (
        AccountToken,
        AuthSession,
        PortfolioItem,
        Profile,
        User,
        UserSkill,
    )

    key = uuid.UUID(user_id)
    async with site.db.reading() as session:
        user = await session.get(User, key)
        assert user is not None
        counts = {}
        for name, model in (("profiles", Profile), ("user_skills", UserSkill),
                            ("portfolio_items", PortfolioItem), ("account_tokens", AccountToken)):
            counts[name] = await session.scalar(select(func.count()).select_from(model)
                                                .where(model.user_id == key))
        counts["live_sessions"] = await session.scalar(
            select(func.count()).select_from(AuthSession)
            .where(AuthSession.user_id == key, AuthSession.revoked_at.is_(None)))
        return {"user": {"email": user.email, "display_name": user.display_name,
                         "password_hash": user.password_hash, "status": user.status},
                "rows": counts}


# ---------------------------------------------------------------------------
# Portfolio
# ---------------------------------------------------------------------------


async def test_portfolio_crud_and_ownership(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    bob = await register(app.client, "bob@example.com", name="Bob")

    created = await app.client.post(f"{API}/users/{ada.id}/portfolio", headers=ada.auth, json={
        "title": "  Compiler  ", "description": "A *small* one", "link": "https://example.com/c",
        "skills": ["py", "Rust"]})
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["title"] == "Compiler"
    assert item["user_id"] == ada.id
    assert [s["slug"] for s in item["skills"]] == ["python", "rust"]
    assert "<em>small</em>" in item["description_html"]

    assert_problem(await app.client.post(f"{API}/users/{ada.id}/portfolio", headers=bob.auth,
                                         json={"title": "Not yours"}), 403)
    assert_problem(await app.client.post(f"{API}/users/{ada.id}/portfolio", json={"title": "anon"}), 401)
    bad_link = await app.client.post(f"{API}/users/{ada.id}/portfolio", headers=ada.auth,
                                     json={"title": "x", "link": "javascript:alert(1)"})
    assert_problem(bad_link, 400, field="link")
    assert_problem(await app.client.post(f"{API}/users/{ada.id}/portfolio", headers=ada.auth,
                                         json={"title": "x", "skills": ["nope-skill"]}), 400, field="skills")

    assert_problem(await app.client.patch(f"{API}/portfolio/{item['id']}", headers=bob.auth,
                                          json={"title": "Hijacked"}), 404)
    assert_problem(await app.client.delete(f"{API}/portfolio/{item['id']}", headers=bob.auth), 404)
    assert_problem(await app.client.post(f"{API}/portfolio/{item['id']}/images", headers=bob.auth,
                                         files={"file": ("a.png", png_bytes(), "image/png")}), 404)

    listed = (await app.client.get(f"{API}/users/{ada.id}/portfolio")).json()
    assert [i["title"] for i in listed["items"]] == ["Compiler"], "nothing changed by Bob"
    assert (await app.client.get(f"{API}/users/{bob.id}/portfolio")).json()["items"] == []

    patched = await app.client.patch(f"{API}/portfolio/{item['id']}", headers=ada.auth,
                                     json={"title": "Compiler v2", "skills": []})
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Compiler v2"
    assert patched.json()["skills"] == []
    assert patched.json()["link"] == "https://example.com/c"

    removed = await app.client.delete(f"{API}/portfolio/{item['id']}", headers=ada.auth)
    assert removed.status_code == 204
    assert (await app.client.get(f"{API}/users/{ada.id}/portfolio")).json()["items"] == []
    assert_problem(await app.client.delete(f"{API}/portfolio/{item['id']}", headers=ada.auth), 404)


async def test_portfolio_images(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    item = (await app.client.post(f"{API}/users/{ada.id}/portfolio", headers=ada.auth,
                                  json={"title": "Shots"})).json()
    upload = await app.client.post(f"{API}/portfolio/{item['id']}/images", headers=ada.auth,
                                   files={"file": ("shot.png", png_bytes((40, 30)), "image/png")})
    assert upload.status_code in (200, 201), upload.text
    images = upload.json()["images"]
    assert len(images) == 1
    assert images[0]["url"].startswith("/media/")
    assert (images[0]["width"], images[0]["height"]) == (40, 30)
    served = await app.client.get(images[0]["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"
    assert served.content[:4] == b"RIFF"
    assert served.content[8:12] == b"WEBP"
    listed = (await app.client.get(f"{API}/users/{ada.id}/portfolio")).json()["items"][0]
    assert [i["url"] for i in listed["images"]] == [images[0]["url"]]

    text = await app.client.post(f"{API}/portfolio/{item['id']}/images", headers=ada.auth,
                                 files={"file": ("notes.png", b"just some text, not an image", "image/png")})
    assert_problem(text, 400)
    svg = await app.client.post(f"{API}/portfolio/{item['id']}/images", headers=ada.auth,
                                files={"file": ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>',
                                                "image/svg+xml")})
    assert_problem(svg, 400)
    assert len((await app.client.get(f"{API}/users/{ada.id}/portfolio")).json()["items"][0]["images"]) == 1

    # dropping an image through PATCH removes it from storage
    dropped = await app.client.patch(f"{API}/portfolio/{item['id']}", headers=ada.auth,
                                     json={"image_keys": []})
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["images"] == []
    assert (await app.client.get(images[0]["url"])).status_code == 404
    assert_problem(await app.client.patch(f"{API}/portfolio/{item['id']}", headers=ada.auth,
                                          json={"image_keys": ["avatars/0123456789abcdef.webp"]}),
                   400, field="image_keys")


async def test_portfolio_image_too_large_is_413(apps: Apps) -> None:
    app = await apps.open(uploads={"max_image_bytes": 2048})
    ada = await register(app.client, "ada@example.com")
    item = (await app.client.post(f"{API}/users/{ada.id}/portfolio", headers=ada.auth,
                                  json={"title": "Big"})).json()
    big = png_bytes((64, 64), noise=True)
    assert len(big) > 2048
    too_large = await app.client.post(f"{API}/portfolio/{item['id']}/images", headers=ada.auth,
                                      files={"file": ("big.png", big, "image/png")})
    assert_problem(too_large, 413)
    small = png_bytes((8, 8))
    assert len(small) < 2048
    ok = await app.client.post(f"{API}/portfolio/{item['id']}/images", headers=ada.auth,
                               files={"file": ("small.png", small, "image/png")})
    assert ok.status_code in (200, 201), ok.text
    assert len(ok.json()["images"]) == 1


async def test_avatar_upload_replace_and_remove(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    anonymous = await app.client.put(f"{API}/me/avatar", files={"file": ("a.png", png_bytes(), "image/png")})
    assert_problem(anonymous, 401)
    first = await app.client.put(f"{API}/me/avatar", headers=ada.auth,
                                 files={"file": ("a.png", png_bytes((900, 600)), "image/png")})
    assert first.status_code == 200, first.text
    first_url = first.json()["profile"]["avatar_url"]
    assert first_url.startswith("/media/avatars/")
    served = await app.client.get(first_url)
    assert served.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(served.content)) as image:
        assert max(image.size) <= 512, "avatars are scaled down"
    assert (await app.client.get(f"{API}/users/{ada.id}")).json()["profile"]["avatar_url"] == first_url

    assert_problem(await app.client.put(f"{API}/me/avatar", headers=ada.auth,
                                        files={"file": ("a.txt", b"hello", "text/plain")}), 400)
    second = await app.client.put(f"{API}/me/avatar", headers=ada.auth,
                                  files={"file": ("b.png", png_bytes(), "image/png")})
    second_url = second.json()["profile"]["avatar_url"]
    assert second_url != first_url
    assert (await app.client.get(first_url)).status_code == 404, "the replaced file is deleted"
    removed = await app.client.delete(f"{API}/me/avatar", headers=ada.auth)
    assert removed.status_code == 200, removed.text
    assert removed.json()["profile"]["avatar_url"] is None
    assert (await app.client.get(second_url)).status_code == 404


async def test_registration_can_be_closed(apps: Apps) -> None:
    app = await apps.open(accounts={"allow_registration": False})
    response = await app.client.post(f"{API}/auth/register", json={
        "email": "ada@example.com", "password": PASSWORD, "display_name": "Ada", "roles": ["client"]})
    assert_problem(response, 403)
    assert_problem(await app.client.post(f"{API}/auth/login", json={"email": "ada@example.com",
                                                                    "password": PASSWORD}), 401)


async def test_portfolio_pagination_and_bad_cursors(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    titles = [f"Item {n}" for n in range(5)]
    for title in titles:
        assert (await app.client.post(f"{API}/users/{ada.id}/portfolio", headers=ada.auth,
                                      json={"title": title})).status_code == 201
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await app.client.get(f"{API}/users/{ada.id}/portfolio", params=params)).json()
        seen += [i["title"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == titles
    assert seen == list(reversed(titles)), "newest first"

    for bad in ("garbage!!", encode_cursor("x"), encode_cursor("not-a-date", str(uuid.uuid4())),
                encode_cursor("2024-01-01T00:00:00+00:00", "not-a-uuid"),
                encode_cursor(1, 2),
                encode_cursor("2024-01-01T00:00:00", str(uuid.uuid4()))):  # a timestamp without zone
        response = await app.client.get(f"{API}/users/{ada.id}/portfolio", params={"cursor": bad})
        assert_problem(response, 400, field="cursor")


# ---------------------------------------------------------------------------
# Skills and providers
# ---------------------------------------------------------------------------


async def test_skills_pagination_walk_covers_every_skill_once(app: App) -> None:
    catalogue = sorted(entry["slug"] for entry in load_skill_catalogue())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 25}
        if cursor:
            params["cursor"] = cursor
        response = await app.client.get(f"{API}/skills", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 25
        seen += [s["slug"] for s in page["items"]]
        cursor = page["next_cursor"]
        pages += 1
        assert pages <= len(catalogue), "the walk does not end"
        if cursor is None:
            break
    assert seen == catalogue
    assert pages == -(-len(catalogue) // 25)

    everything = (await app.client.get(f"{API}/skills", params={"limit": 100})).json()
    assert len(everything["items"]) == 100
    assert everything["next_cursor"]

    for bad in ("%%%", "bm90IGpzb24", encode_cursor("a", "b")):
        assert_problem(await app.client.get(f"{API}/skills", params={"cursor": bad}), 400, field="cursor")
    for limit in (0, 101, -1):
        assert_problem(await app.client.get(f"{API}/skills", params={"limit": limit}), 400, field="limit")


async def test_skills_search(app: App) -> None:
    found = (await app.client.get(f"{API}/skills", params={"q": "js"})).json()["items"]
    assert found
    assert found[0]["slug"] == "javascript"
    assert found[0]["name"] == "JavaScript"
    python = (await app.client.get(f"{API}/skills", params={"q": "PY"})).json()["items"]
    assert python[0]["slug"] == "python"
    assert (await app.client.get(f"{API}/skills", params={"q": "zzzz-no-such"})).json()["items"] == []
    languages = (await app.client.get(f"{API}/skills", params={"category": "languages", "limit": 100})).json()
    assert languages["items"]
    assert {s["category"] for s in languages["items"]} == {"languages"}


async def test_auth_providers(app: App) -> None:
    response = await app.client.get(f"{API}/auth/providers")
    assert response.status_code == 200
    body = response.json()
    assert body["password"] is True
    assert isinstance(body["providers"], list)
    for provider in body["providers"]:
        assert set(provider) == {"id", "label", "login_url"}
        assert provider["login_url"] == f"/auth/{provider['id']}/login"


async def test_auth_providers_without_password_auth(apps: Apps) -> None:
    app = await apps.open(plugins={"disabled": ["password_auth"]})
    body = (await app.client.get(f"{API}/auth/providers")).json()
    assert body["password"] is False
    assert_problem(await app.client.post(f"{API}/auth/login", json={"email": "a@example.com",
                                                                    "password": PASSWORD}), 404)
    assert_problem(await app.client.post(f"{API}/auth/register", json={
        "email": "a@example.com", "password": PASSWORD, "display_name": "A", "roles": ["client"]}), 404)
