"""Attacks on accounts, over HTTP: forged and stale tokens, revocation across app instances,
suspension, CSRF on cookie sessions, rate limits, and a stranger walking every route with
someone else's ids.

Helpers (``Apps``, ``register``, ``assert_problem``…) come from ``test_accounts_api.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from litestar import Request, post

from mercato import hookimpl
from mercato.core.accounts.models import SessionKind
from mercato.core.accounts.services import AccountService
from mercato.core.accounts.sessions import runtime_of
from mercato.core.security.tokens import TokenSigner, csrf_token, derive_key
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_api import (
    API,
    NEW_PASSWORD,
    PASSWORD,
    PROBLEM,
    RELAXED_LOGIN_LIMITS,
    App,
    Apps,
    Person,
    assert_problem,
    bearer,
    claims_of,
    link_token,
    login,
    png_bytes,
    register,
    wait_for_mail,
)
from tests.integration.test_listings import service_body
from tests.marketplace_helpers import project_body, proposal_body

SESSION_COOKIE = "mercato_session"
CSRF_COOKIE = "mercato_csrf"
WRONG_PASSWORD = "Wrong-Password-1234"


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


async def eventually(check: Callable[[], Any], *, within: float, every: float = 0.05) -> float:
    """Seconds until ``await check()`` is true; fails after ``within`` seconds."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > within:
            pytest.fail(f"not true within {within} s")
        await asyncio.sleep(every)


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(site: Site, person: Person, **changes: Any) -> dict[str, Any]:
    """The claims of a genuine access token of ``person``, with ``changes`` (None deletes)."""
    claims = claims_of(person.access)
    now = int(time.time())
    claims.update(iat=now, exp=now + 600)
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _sign(site: Site, claims: dict[str, Any], *, alg: str = "HS256", typ: str = "at+jwt") -> str:
    """A token signed with the site's real key (so only what the test changed is wrong)."""
    key = OctKey.import_key(derive_key(site.settings.secret_key(), "jwt"))
    return jwt.encode({"alg": alg, "typ": typ}, claims, key, algorithms=[alg])


def _ids(person: Person) -> dict[str, Any]:
    claims = claims_of(person.access)
    return {"user_id": uuid.UUID(claims["sub"]), "session_id": uuid.UUID(claims["sid"]),
            "roles": frozenset(claims["roles"])}


BAD_TOKENS: dict[str, Callable[[Site, Person], str]] = {
    "expired": lambda site, p: runtime_of(site).signer.issue("access", **_ids(p), ttl_seconds=-100),
    "issued an hour ago": lambda site, p: runtime_of(site).signer.issue(
        "access", **_ids(p), ttl_seconds=900, now=int(time.time()) - 3600),
    "issued in the future": lambda site, p: _sign(site, _claims(site, p, iat=int(time.time()) + 3600,
                                                                exp=int(time.time()) + 7200)),
    "other secret": lambda site, p: TokenSigner("another-site-secret", issuer=runtime_of(site).signer.issuer)
    .issue("access", **_ids(p), ttl_seconds=600),
    "alg none": lambda site, p: f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(_claims(site, p))}.",
    "alg none, real signature": lambda site, p: (
        f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(_claims(site, p))}.{p.access.split('.')[2]}"),
    "HS512 with the real key": lambda site, p: _sign(site, _claims(site, p), alg="HS512"),
    "wrong aud": lambda site, p: _sign(site, _claims(site, p,
                                                     aud=f"{runtime_of(site).signer.issuer}#session")),
    "no aud": lambda site, p: _sign(site, _claims(site, p, aud=None)),
    "wrong iss": lambda site, p: _sign(site, _claims(site, p, iss="https://evil.example")),
    "no exp": lambda site, p: _sign(site, _claims(site, p, exp=None)),
    "no sid": lambda site, p: _sign(site, _claims(site, p, sid=None)),
    "sub not a uuid": lambda site, p: _sign(site, _claims(site, p, sub="admin")),
    "wrong typ": lambda site, p: _sign(site, _claims(site, p), typ="JWT"),
    "session cookie token": lambda site, p: runtime_of(site).signer.issue("session", **_ids(p),
                                                                          ttl_seconds=600),
    "tampered payload": lambda site, p: ".".join([
        p.access.split(".")[0], _b64(_claims(site, p, roles=["admin", "client"])), p.access.split(".")[2]]),
    "garbage": lambda site, p: "not-a-token",
    "empty": lambda site, p: "",
}


@pytest.fixture
async def app(apps: Apps) -> App:
    return await apps.open(accounts=RELAXED_LOGIN_LIMITS)


async def test_bad_access_tokens_are_401_problems(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    genuine = await app.client.get(f"{API}/me", headers=ada.auth)
    assert genuine.status_code == 200, "the control: a genuine token works"
    # the forging helpers make a valid token when nothing is changed (so each case tests one thing)
    assert (await app.client.get(f"{API}/me", headers=bearer(_sign(app.site, _claims(app.site, ada))))
            ).status_code == 200
    accepted = []
    for name, make in BAD_TOKENS.items():
        response = await app.client.get(f"{API}/me", headers=bearer(make(app.site, ada)))
        if response.status_code != 401:
            accepted.append(f"{name}: {response.status_code}")
            continue
        assert response.headers["content-type"].startswith(PROBLEM), name
        assert response.json()["status"] == 401
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), name
        # and on a write, too
        write = await app.client.patch(f"{API}/me", headers=bearer(make(app.site, ada)),
                                       json={"headline": name})
        if write.status_code != 401:
            accepted.append(f"{name} (PATCH): {write.status_code}")
    assert accepted == [], f"bad tokens not refused with 401: {accepted}"
    assert (await app.client.get(f"{API}/me", headers=ada.auth)).json()["profile"]["headline"] == ""


async def test_a_revoked_bearer_token_is_refused_even_on_public_routes(app: App) -> None:
    """A bad Bearer token is refused even on routes that need no sign-in (clients must refresh)."""
    ada = await register(app.client, "ada@example.com")
    await app.client.post(f"{API}/auth/logout", headers=ada.auth)
    for method, url in (("GET", f"{API}/skills"), ("GET", f"{API}/users/{ada.id}"),
                        ("GET", f"{API}/auth/providers")):
        assert_problem(await app.client.request(method, url, headers=ada.auth), 401)


# ---------------------------------------------------------------------------
# Revocation reaches every instance
# ---------------------------------------------------------------------------


async def two_instances(apps: Apps) -> tuple[App, App]:
    settings = await apps.settings(accounts=RELAXED_LOGIN_LIMITS)
    return await apps.open(settings), await apps.open(settings)


async def test_logout_on_one_instance_is_refused_on_another_within_seconds(apps: Apps) -> None:
    a, b = await two_instances(apps)
    ada = await register(a.client, "ada@example.com")
    assert (await b.client.get(f"{API}/me", headers=ada.auth)).status_code == 200, "B accepts A's tokens"
    assert (await a.client.post(f"{API}/auth/logout", headers=ada.auth)).status_code == 200
    assert_problem(await a.client.get(f"{API}/me", headers=ada.auth), 401)

    async def refused_on_b() -> bool:
        return (await b.client.get(f"{API}/me", headers=ada.auth)).status_code == 401

    await eventually(refused_on_b, within=3.0)


async def test_refresh_reuse_on_one_instance_is_refused_on_another(apps: Apps) -> None:
    a, b = await two_instances(apps)
    ada = await register(a.client, "ada@example.com")
    pair = (await a.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh})).json()
    assert (await b.client.get(f"{API}/me", headers=bearer(pair["access_token"]))).status_code == 200
    assert_problem(await a.client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh}), 401)

    async def refused_on_b() -> bool:
        return (await b.client.get(f"{API}/me", headers=bearer(pair["access_token"]))).status_code == 401

    await eventually(refused_on_b, within=3.0)
    assert_problem(await b.client.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]}),
                   401)


async def test_suspension_on_one_instance_is_refused_on_another(apps: Apps) -> None:
    a, b = await two_instances(apps)
    admin = await make_admin(a, "root@example.com")
    eve = await register(a.client, "eve@example.com", name="Eve")
    assert (await b.client.get(f"{API}/me", headers=eve.auth)).status_code == 200
    suspended = await a.client.post(f"{API}/admin/users/{eve.id}/suspend", headers=admin.auth,
                                    json={"reason": "Spam"})
    assert suspended.status_code == 200, suspended.text

    async def refused_on_b() -> bool:
        return (await b.client.get(f"{API}/me", headers=eve.auth)).status_code == 401

    await eventually(refused_on_b, within=3.0)


# ---------------------------------------------------------------------------
# Races
# ---------------------------------------------------------------------------


async def test_simultaneous_sign_ups_with_one_address(apps: Apps) -> None:
    a, b = await two_instances(apps)
    body = {"email": "twin@example.com", "password": PASSWORD, "display_name": "Twin", "roles": ["client"]}
    results = await asyncio.gather(
        a.concurrently(("POST", f"{API}/auth/register", body), ("POST", f"{API}/auth/register", body)),
        b.concurrently(("POST", f"{API}/auth/register", {**body, "email": "TWIN@example.com"})),
    )
    statuses = sorted(status for answers in results for status, _ in answers)
    assert statuses == [201, 409, 409], results
    await login(a.client, "twin@example.com")


async def test_simultaneous_refreshes_with_one_token(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    body = {"refresh_token": ada.refresh}
    answers = await app.concurrently(*[("POST", f"{API}/auth/refresh", body)] * 3)
    statuses = sorted(status for status, _ in answers)
    assert all(status in (200, 401) for status in statuses), answers
    assert statuses.count(200) <= 1, "a refresh token is spent once"
    assert statuses.count(401) >= 2


async def test_simultaneous_uses_of_a_reset_link(app: App) -> None:
    await register(app.client, "ada@example.com")
    await app.client.post(f"{API}/auth/password-reset/request", json={"email": "ada@example.com"})
    token = link_token((await wait_for_mail(app, "ada@example.com", 2))[0], "/reset-password")
    passwords = ["First-Winner-Pass-81", "Second-Winner-Pass-82", "Third-Winner-Pass-83"]
    confirm = f"{API}/auth/password-reset/confirm"
    answers = await app.concurrently(*[("POST", confirm, {"token": token, "new_password": p})
                                       for p in passwords])
    statuses = [status for status, _ in answers]
    assert sorted(statuses) == [200, 400, 400], answers
    winner = passwords[statuses.index(200)]
    await login(app.client, "ada@example.com", winner)


# ---------------------------------------------------------------------------
# Suspension
# ---------------------------------------------------------------------------


async def make_admin(app: App, email: str) -> Person:
    """An administrator made through the service layer, logged in through the API."""

    async def create() -> None:
        async with app.site.db.transaction() as session:
            await AccountService(app.site).register(
                session, email=email, display_name="Site Admin", roles=["client"], password=PASSWORD,
                method="test", verified=True, admin=True)

    await app.on_loop(create)
    tokens = await login(app.client, email)
    return Person(id=claims_of(tokens["access_token"])["sub"], email=email, password=PASSWORD,
                  access=tokens["access_token"], refresh=tokens["refresh_token"])


async def test_suspend_and_reinstate(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    eve = await register(app.client, "eve@example.com", name="Eve")
    bob = await register(app.client, "bob@example.com", name="Bob")
    eve_browser = await Browser.signed_in(app, eve.email)
    suspend, reinstate = f"{API}/admin/users/{eve.id}/suspend", f"{API}/admin/users/{eve.id}/reinstate"

    # the admin API is forbidden to others
    assert_problem(await app.client.post(suspend, headers=bob.auth, json={"reason": "Spam"}), 403)
    assert_problem(await app.client.post(reinstate, headers=bob.auth), 403)
    assert_problem(await app.client.post(suspend, json={"reason": "Spam"}), 401)
    assert (await app.client.get(f"{API}/me", headers=eve.auth)).status_code == 200, "Bob changed nothing"

    no_reason = await app.client.post(suspend, headers=admin.auth, json={"reason": ""})
    assert_problem(no_reason, 400, field="reason")
    assert_problem(await app.client.post(f"{API}/admin/users/{admin.id}/suspend", headers=admin.auth,
                                         json={"reason": "oops"}), 403)
    assert_problem(await app.client.post(f"{API}/admin/users/{uuid.uuid4()}/suspend", headers=admin.auth,
                                         json={"reason": "Spam"}), 404)
    assert_problem(await app.client.post(reinstate, headers=admin.auth), 409)

    done = await app.client.post(suspend, headers=admin.auth, json={"reason": "Spam"})
    assert done.status_code == 200, done.text
    # refused on the very next request, API and browser alike
    assert_problem(await app.client.get(f"{API}/me", headers=eve.auth), 401)
    assert_problem(await app.client.post(f"{API}/auth/refresh", json={"refresh_token": eve.refresh}), 401)
    assert (await eve_browser.request("GET", f"{API}/me")).status_code == 401
    assert_problem(await app.client.get(f"{API}/users/{eve.id}"), 404)
    refused = await app.client.post(f"{API}/auth/login", json={"email": eve.email, "password": PASSWORD})
    assert_problem(refused, 403)
    await app.client.post(f"{API}/auth/password-reset/request", json={"email": eve.email})
    await asyncio.sleep(0.3)
    assert [m for m in app.mails_to(eve.email) if "/reset-password" in m.text] == [], (
        "no reset link for a suspended account")

    back = await app.client.post(reinstate, headers=admin.auth)
    assert back.status_code == 200, back.text
    tokens = await login(app.client, eve.email)
    assert (await app.client.get(f"{API}/me", headers=bearer(tokens["access_token"]))).status_code == 200
    assert_problem(await app.client.get(f"{API}/me", headers=eve.auth), 401)  # old sessions stay ended
    assert (await app.client.get(f"{API}/users/{eve.id}")).status_code == 200


async def test_admin_role_is_not_public(app: App) -> None:
    admin = await make_admin(app, "root@example.com")
    public = (await app.client.get(f"{API}/users/{admin.id}")).json()
    assert "admin" not in public["roles"]


# ---------------------------------------------------------------------------
# Browser sessions and CSRF
# ---------------------------------------------------------------------------


_CSRF_FIELD = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


def has_route(site_app: App, method: str, path: str) -> bool:
    app = site_app.client.app
    return any(route.path == path and method in getattr(route, "methods", ()) for route in app.routes)


@dataclass
class Browser:
    """One browser: its own cookies (the shared test client's jar is not used)."""

    app: App
    cookies: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def anonymous(cls, app: App) -> Browser:
        browser = cls(app)
        await browser.request("GET", "/", headers={"Accept": "text/html"})  # pages set the CSRF cookie
        assert CSRF_COOKIE in browser.cookies
        return browser

    @classmethod
    async def signed_in(cls, app: App, email: str, password: str = PASSWORD) -> Browser:
        """Log in through the theme's form when it exists, else start a session directly."""
        browser = await cls.anonymous(app)
        if has_route(app, "POST", "/login"):
            page = await browser.request("GET", "/login", headers={"Accept": "text/html"})
            found = _CSRF_FIELD.search(page.text)
            token = found.group(1) if found else browser.csrf()
            response = await browser.request("POST", "/login", data={
                "email": email, "password": password, "csrf_token": token, "next": "/"})
            assert response.status_code == 303, response.text
        else:
            async def start() -> str:
                service = AccountService(app.site)
                async with app.site.db.transaction() as session:
                    user = await service.find_by_email(session, email)
                    assert user is not None
                    auth = await service.start_session(session, user, kind=SessionKind.BROWSER)
                    return service.session_cookie_token(user, auth)

            browser.cookies[SESSION_COOKIE] = await app.on_loop(start)
        assert SESSION_COOKIE in browser.cookies
        return browser

    @property
    def session_id(self) -> str:
        token = self.cookies.get(SESSION_COOKIE)
        return str(claims_of(token)["sid"]) if token else ""

    def csrf(self, *, session_id: str | None = None) -> str:
        """The CSRF token this browser's pages carry (signed double submit of the nonce cookie)."""
        sid = self.session_id if session_id is None else session_id
        return csrf_token(self.app.site.settings.secret_key(), self.cookies[CSRF_COOKIE], sid)

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      **kwargs: Any) -> Any:
        client = self.app.client
        client.cookies.clear()
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        response = await client.request(method, url, headers=sent, follow_redirects=False, **kwargs)
        client.cookies.clear()
        for raw in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response


async def test_cookie_session_api_writes_need_the_csrf_header(app: App) -> None:
    ada = await register(app.client, "ada@example.com")
    bob = await register(app.client, "bob@example.com", name="Bob")
    browser = await Browser.signed_in(app, ada.email)
    other = await Browser.signed_in(app, bob.email)

    me = await browser.request("GET", f"{API}/me")
    assert me.status_code == 200, "the cookie signs the browser in"
    assert me.json()["email"] == "ada@example.com"

    def patch(headers: dict[str, str]) -> Any:
        return browser.request("PATCH", f"{API}/me", headers=headers, json={"headline": "Forged"})

    assert_problem(await patch({}), 403)
    assert_problem(await patch({"X-CSRF-Token": "0" * 64}), 403)
    assert_problem(await patch({"X-CSRF-Token": browser.csrf(session_id="")}), 403)  # the anonymous one
    assert_problem(await patch({"X-CSRF-Token": other.csrf()}), 403)  # another browser's
    assert_problem(await browser.request("POST", f"{API}/auth/logout"), 403)
    assert (await browser.request("GET", f"{API}/me")).json()["profile"]["headline"] == ""

    ok = await patch({"X-CSRF-Token": browser.csrf()})
    assert ok.status_code == 200, ok.text
    assert ok.json()["profile"]["headline"] == "Forged"
    # Bearer calls need no CSRF token: browsers never attach one on their own
    api = await app.client.patch(f"{API}/me", headers=ada.auth, json={"headline": "API"})
    assert api.status_code == 200

    out = await browser.request("POST", f"{API}/auth/logout", headers={"X-CSRF-Token": browser.csrf()})
    assert out.status_code == 200, out.text
    assert (await browser.request("GET", f"{API}/me")).status_code == 401
    assert (await app.client.get(f"{API}/me", headers=ada.auth)).status_code == 200, "only that session ended"


class CsrfProbe:
    """A plugin with one theme form, so the check below always has a form to try."""

    @hookimpl
    def register_routes(self, site: Site) -> list[Any]:
        @post("/csrf-probe", status_code=200, include_in_schema=False)
        async def probe(request: Request[Any, Any, Any]) -> dict[str, str]:
            user = request.scope.get("user")
            return {"user": str(user.user_id) if user else ""}

        return [probe]


async def test_theme_forms_need_the_csrf_token(apps: Apps) -> None:
    app = await apps.open(accounts=RELAXED_LOGIN_LIMITS, extra=[("csrf_probe", CsrfProbe())])
    ada = await register(app.client, "ada@example.com")
    anonymous = await Browser.anonymous(app)
    browser = await Browser.signed_in(app, ada.email)
    forms = sorted({route.path for route in app.client.app.routes
                    if not route.path.startswith(("/api/", "/schema")) and "POST" in route.methods})
    assert "/csrf-probe" in forms
    unprotected = []
    for path in forms:
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        for who, visitor in (("anonymous", anonymous), ("signed in", browser)):
            for data in ({}, {"csrf_token": ""}, {"csrf_token": visitor.csrf(session_id="x")}):
                response = await visitor.request("POST", url, data=data)
                if response.status_code != 403:
                    unprotected.append(f"{who} POST {path} {data}: {response.status_code}")
    assert unprotected == [], unprotected
    assert (await browser.request("GET", f"{API}/me")).status_code == 200, "still signed in"

    ok = await anonymous.request("POST", "/csrf-probe", data={"csrf_token": anonymous.csrf()})
    assert ok.status_code == 200
    assert ok.json() == {"user": ""}
    ok = await browser.request("POST", "/csrf-probe", data={"csrf_token": browser.csrf()})
    assert ok.json() == {"user": ada.id}
    multipart = await browser.request("POST", "/csrf-probe", data={"csrf_token": browser.csrf()},
                                      files={"f": ("a.txt", b"x", "text/plain")})
    assert multipart.status_code == 200, "the token is read from multipart forms too"
    # a token minted for the anonymous visitor does not work once signed in (bound to the session)
    assert (await browser.request("POST", "/csrf-probe",
                                  data={"csrf_token": browser.csrf(session_id="")})).status_code == 403

    if has_route(app, "POST", "/logout"):
        out = await browser.request("POST", "/logout", data={"csrf_token": browser.csrf()})
        assert out.status_code in (302, 303), out.text
        assert (await browser.request("GET", f"{API}/me")).status_code == 401


# ---------------------------------------------------------------------------
# Rate limits (the defaults: 10 log-ins a minute per address, 5 per account, 5 mails an hour)
# ---------------------------------------------------------------------------


async def one_window(seconds: int, *, needed: float = 5.0) -> None:
    """Wait for a fresh fixed window when fewer than ``needed`` seconds of this one remain
    (the limiter counts per window aligned to the epoch; a test must not straddle two)."""
    remaining = seconds - time.time() % seconds
    if remaining < needed:
        await asyncio.sleep(remaining + 0.1)


def assert_rate_limited(response: Any) -> None:
    assert_problem(response, 429)
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600


async def test_login_is_rate_limited_per_address(apps: Apps) -> None:
    app = await apps.open()
    ada = await register(app.client, "ada@example.com")
    await one_window(60)
    for n in range(10):  # a forged X-Forwarded-For does not make a new address (no trusted proxies)
        response = await app.client.post(f"{API}/auth/login", headers={"X-Forwarded-For": f"10.0.0.{n}"},
                                         json={"email": f"guess{n}@example.com", "password": WRONG_PASSWORD})
        assert_problem(response, 401)
    blocked = await app.client.post(f"{API}/auth/login", json={"email": "guess10@example.com",
                                                               "password": WRONG_PASSWORD})
    assert_rate_limited(blocked)
    assert int(blocked.headers["retry-after"]) <= 60
    right = await app.client.post(f"{API}/auth/login", json={"email": ada.email, "password": PASSWORD})
    assert_rate_limited(right)


async def test_login_is_rate_limited_per_account(apps: Apps) -> None:
    app = await apps.open()
    ada = await register(app.client, "ada@example.com")
    await register(app.client, "bob@example.com", name="Bob")
    await one_window(60)
    for _ in range(5):
        response = await app.client.post(f"{API}/auth/login", json={"email": ada.email,
                                                                    "password": WRONG_PASSWORD})
        assert_problem(response, 401)
    # the right password does not help: the account is being guessed at
    assert_rate_limited(await app.client.post(f"{API}/auth/login", json={"email": "ADA@example.com",
                                                                         "password": PASSWORD}))
    # another account from the same address still logs in
    await login(app.client, "bob@example.com")


async def test_password_reset_requests_are_rate_limited(apps: Apps) -> None:
    app = await apps.open()
    await one_window(3600)
    for _ in range(5):
        response = await app.client.post(f"{API}/auth/password-reset/request",
                                         json={"email": "someone@example.com"})
        assert response.status_code == 202
    assert_rate_limited(await app.client.post(f"{API}/auth/password-reset/request",
                                              json={"email": "Someone@example.com"}))
    # per address: 4 x mails_per_hour for all addresses together (the refused one above counts)
    statuses = []
    for n in range(15):
        response = await app.client.post(f"{API}/auth/password-reset/request",
                                         json={"email": f"other{n}@example.com"})
        statuses.append(response.status_code)
    assert statuses == [202] * 14 + [429]


async def test_registration_is_rate_limited_per_address(apps: Apps) -> None:
    app = await apps.open()
    body = {"password": "password123", "display_name": "Spammer", "roles": ["client"]}
    await one_window(3600)
    for n in range(20):  # refused sign-ups count too (no argon2 work is done for them)
        response = await app.client.post(f"{API}/auth/register", json={**body, "email": f"s{n}@example.com"})
        assert_problem(response, 400)
    assert_rate_limited(await app.client.post(f"{API}/auth/register", json={
        **body, "password": PASSWORD, "email": "s20@example.com"}))


# ---------------------------------------------------------------------------
# The stranger walk: every route, anonymous and as someone else
# ---------------------------------------------------------------------------


PRIVATE_KEYS = frozenset({"email", "has_password", "linked_providers"})
WALKED_PREFIXES = ("/api/v1/", "/settings", "/users", "/projects", "/proposals", "/contracts", "/dashboard",
                   "/disputes", "/admin", "/wallet", "/notifications", "/messages")
FILLABLE = {"user_id": "a_id", "item_id": "a_item", "project_id": "a_project", "proposal_id": "a_proposal",
            "contract_id": "a_contract", "service_id": "a_service", "attachment_id": "a_attachment",
            "milestone_id": "a_milestone", "gateway_id": "gateway", "file_id": "a_contract_file",
            "dispute_id": "a_dispute", "payout_method_id": "a_payout_method",
            "report_id": "a_report", "listing_id": "a_service",
            "transaction_id": "a_transaction", "notification_id": "a_notification",
            "conversation_id": "a_conversation", "message_id": "a_message", "review_id": "a_review"}
"""Path parameters the walk knows, and which of A's ids goes in."""


@dataclass
class World:
    a: Person
    b: Person
    a_item: str
    b_browser: Browser
    anonymous: Browser
    a_project: str = ""
    """A's draft project (private: no one else may see it)."""
    a_open_project: str = ""
    """A's open project, on which A hired C."""
    a_contract_file: str = ""
    """A file A uploaded to A's contract."""
    a_dispute: str = ""
    a_report: str = ""
    """A's dispute over the first milestone of A's contract (funded with a test card)."""
    a_notification: str = ""
    """A's notification of C's proposal."""
    a_conversation: str = ""
    """A's conversation with C about A's contract."""
    a_message: str = ""
    """A's message in it."""
    a_review: str = field(default_factory=lambda: str(uuid.uuid4()))
    """A review id: A's contract never ended, so no review exists, and no one may reply to it."""
    a_proposal: str = ""
    """C's proposal on A's open project, accepted by A (B is a stranger to it)."""
    a_contract: str = ""
    """The contract between A (client) and C (developer)."""
    a_service: str = ""
    """A's draft service."""
    a_attachment: str = ""
    """A file on A's draft project."""
    a_milestone: str = ""
    """The first milestone of A's contract."""
    a_payout_method: str = ""
    """A's bank account for payouts."""
    a_transaction: str = ""
    """The ledger transaction that funded A's milestone (its receipt is A's and C's only)."""
    gateway: str = "sandbox"
    """A payment gateway (webhooks come from it, not from people)."""

    @property
    def a_id(self) -> str:
        return self.a.id

    @property
    def private_ids(self) -> list[str]:
        """Ids of A's objects no one else may see (and so find in any answer)."""
        return [self.a_project, self.a_proposal, self.a_contract, self.a_service, self.a_attachment,
                self.a_milestone, self.a_payout_method, self.a_transaction, self.a_notification,
                self.a_conversation, self.a_message]


Body = Callable[[World, str], dict[str, Any]]
"""(world, who) → request keyword arguments (``json=``, ``data=``, ``files=``)."""


@dataclass(frozen=True)
class Spec:
    anonymous: frozenset[int]
    stranger: frozenset[int]
    body: Body | None = None
    last: bool = False
    about_a: bool = False
    """The stranger's write is their own, about A (blocking A), not a change to A's object."""


def spec(anonymous: set[int] | int, stranger: set[int] | int, body: Body | None = None, *,
         last: bool = False, about_a: bool = False) -> Spec:
    def as_set(value: set[int] | int) -> frozenset[int]:
        return frozenset({value}) if isinstance(value, int) else frozenset(value)

    return Spec(as_set(anonymous), as_set(stranger), body, last, about_a)


def _png(name: str) -> Body:
    return lambda w, who: {"files": {name: ("x.png", png_bytes(), "image/png")}}


def _project_form(w: World, who: str) -> dict[str, Any]:
    return {"data": {
        "title": f"{who.title()}'s planted project",
        "description": "Twenty characters or more of description.",
        "category": "web-backend", "skills": "Python", "budget_type": "fixed", "budget_min": "100",
        "budget_max": "500", "currency": "USD", "duration": "1_4_weeks", "experience_level": "intermediate",
        "visibility": "public", "action": "draft"}}


def _bid_form(w: World, who: str) -> dict[str, Any]:
    return {"data": {"cover_letter": "A planted cover letter of twenty characters or more.",
                     "amount": "300", "duration_days": "14"}}


def _bid_json(w: World, who: str) -> dict[str, Any]:
    return {"json": {"cover_letter": "A planted cover letter of twenty characters or more.",
                     "amount": 300_00, "currency": "USD", "duration_days": 14, "answers": []}}


TO_LOGIN = {303}
"""A theme page answers a signed-out visitor by sending them to /login."""
MINE = {200, 303, 400}
"""What B may get doing something to B's own account through the theme."""

SPECS: dict[tuple[str, str], Spec] = {
    # -- API: public
    ("POST", "/api/v1/auth/register"): spec(201, 201, lambda w, who: {"json": {
        "email": f"walker-{who}@example.com", "password": PASSWORD, "display_name": "Walker",
        "roles": ["client"]}}),
    ("POST", "/api/v1/auth/login"): spec(401, 401, lambda w, who: {"json": {
        "email": w.a.email, "password": WRONG_PASSWORD}}),
    ("POST", "/api/v1/auth/refresh"): spec(401, 401, lambda w, who: {"json": {"refresh_token": "r" * 43}}),
    ("POST", "/api/v1/auth/verify-email"): spec(400, 400, lambda w, who: {"json": {"token": "t" * 43}}),
    ("POST", "/api/v1/auth/confirm-email"): spec(400, 400, lambda w, who: {"json": {"token": "t" * 43}}),
    ("POST", "/api/v1/auth/password-reset/request"): spec(202, 202, lambda w, who: {"json": {
        "email": w.a.email}}),
    ("POST", "/api/v1/auth/password-reset/confirm"): spec(400, 400, lambda w, who: {"json": {
        "token": "t" * 43, "new_password": NEW_PASSWORD}}),
    ("GET", "/api/v1/auth/providers"): spec(200, 200),
    ("GET", "/api/v1/users/{user_id:uuid}"): spec(200, 200),
    ("GET", "/api/v1/users/{user_id:uuid}/portfolio"): spec(200, 200),
    ("GET", "/api/v1/skills"): spec(200, 200),
    # -- API: B's own account
    ("POST", "/api/v1/auth/verify-email/resend"): spec(401, 202),
    ("GET", "/api/v1/me"): spec(401, 200),
    ("PATCH", "/api/v1/me"): spec(401, 200, lambda w, who: {"json": {"headline": "Stranger"}}),
    ("DELETE", "/api/v1/me"): spec(401, 400, lambda w, who: {"json": {"password": WRONG_PASSWORD}}),
    ("POST", "/api/v1/me/password"): spec(401, 400, lambda w, who: {"json": {
        "current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD}}),
    ("POST", "/api/v1/me/email"): spec(401, 409, lambda w, who: {"json": {
        "new_email": w.a.email, "password": PASSWORD}}),
    ("PUT", "/api/v1/me/avatar"): spec(401, 200, _png("file")),
    ("DELETE", "/api/v1/me/avatar"): spec(401, 200),
    ("POST", "/api/v1/auth/logout"): spec(200, 200, lambda w, who: {"json": {"refresh_token": "r" * 43}},
                                          last=True),
    # -- API: A's things
    ("POST", "/api/v1/users/{user_id:uuid}/portfolio"): spec(401, 403, lambda w, who: {"json": {
        "title": "Planted"}}),
    ("PATCH", "/api/v1/portfolio/{item_id:uuid}"): spec(401, 404, lambda w, who: {"json": {
        "title": "Hijacked"}}),
    ("DELETE", "/api/v1/portfolio/{item_id:uuid}"): spec(401, 404),
    ("POST", "/api/v1/portfolio/{item_id:uuid}/images"): spec(401, 404, _png("file")),
    ("POST", "/api/v1/admin/users/{user_id:uuid}/suspend"): spec(401, 403, lambda w, who: {"json": {
        "reason": "Stranger"}}),
    ("POST", "/api/v1/admin/users/{user_id:uuid}/reinstate"): spec(401, 403),
    # -- API: moderation and the admin plugin (admins only: 403 for everyone else)
    ("POST", "/api/v1/reports"): spec(401, 201, lambda w, who: {"json": {
        "subject_type": "profile", "subject_id": w.a_id, "reason": "spam"}}),
    ("GET", "/api/v1/admin/stats"): spec(401, 403),
    ("GET", "/api/v1/admin/users"): spec(401, 403),
    ("GET", "/api/v1/admin/users/{user_id:uuid}"): spec(401, 403),
    ("POST", "/api/v1/admin/users/{user_id:uuid}/verify"): spec(401, 403),
    ("PUT", "/api/v1/admin/users/{user_id:uuid}/roles"): spec(401, 403, lambda w, who: {"json": {
        "roles": ["admin"]}}),
    ("GET", "/api/v1/admin/reports"): spec(401, 403),
    ("POST", "/api/v1/admin/reports/{report_id:uuid}/decide"): spec(401, 403, lambda w, who: {"json": {
        "action": "dismiss"}}),
    ("GET", "/api/v1/admin/listings"): spec(401, 403),
    ("POST", "/api/v1/admin/listings/{listing_id:uuid}/approve"): spec(401, 403),
    ("POST", "/api/v1/admin/listings/{listing_id:uuid}/reject"): spec(401, 403, lambda w, who: {"json": {
        "reason": "Planted"}}),
    ("GET", "/api/v1/admin/settings"): spec(401, 403),
    ("PUT", "/api/v1/admin/settings"): spec(401, 403, lambda w, who: {"json": {
        "payments.developer_fee_percent": 0}}),
    ("GET", "/api/v1/admin/audit"): spec(401, 403),
    # -- theme pages
    ("GET", "/users/{user_id:uuid}"): spec(200, 200),
    ("GET", "/settings"): spec(TO_LOGIN, 303),
    ("GET", "/settings/profile"): spec(TO_LOGIN, 200),
    ("GET", "/settings/portfolio"): spec(TO_LOGIN, 200),
    ("GET", "/settings/account"): spec(TO_LOGIN, 200),
    ("POST", "/settings/profile"): spec(TO_LOGIN, MINE, lambda w, who: {"data": {
        "display_name": "Bob Stranger", "roles": "client", "availability": "available"}}),
    ("POST", "/settings/avatar"): spec(TO_LOGIN, MINE, _png("avatar")),
    ("POST", "/settings/avatar/delete"): spec(TO_LOGIN, MINE),
    ("POST", "/settings/portfolio"): spec(TO_LOGIN, MINE, lambda w, who: {"data": {"title": "Bob's work"}}),
    ("POST", "/settings/account"): spec(TO_LOGIN, {400}, lambda w, who: {"data": {
        "action": "email", "new_email": "bob-new@example.com", "current_password": WRONG_PASSWORD}}),
    ("POST", "/settings/password"): spec(TO_LOGIN, {400}, lambda w, who: {"data": {
        "current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD}}),
    ("POST", "/settings/portfolio/{item_id:uuid}/images"): spec(TO_LOGIN, {403, 404}, _png("image")),
    ("POST", "/settings/portfolio/{item_id:uuid}/delete"): spec(TO_LOGIN, {403, 404}),
    # -- marketplace API: public and B's own
    ("GET", "/api/v1/categories"): spec(200, 200),
    ("GET", "/api/v1/projects"): spec(200, 200),
    ("GET", "/api/v1/services"): spec(200, 200),
    ("GET", "/api/v1/search"): spec(200, 200, lambda w, who: {"params": {"q": "Alice secret"}}),
    ("GET", "/api/v1/recommendations/projects"): spec(401, 200),
    ("GET", "/api/v1/recommendations/developers"): spec(401, 404, lambda w, who: {"params": {
        "project_id": w.a_project}}),
    ("GET", "/api/v1/recommendations/services"): spec(404, 404, lambda w, who: {"params": {
        "service_id": w.a_service}}),
    ("GET", "/api/v1/projects/mine"): spec(401, 200),
    ("GET", "/api/v1/proposals/mine"): spec(401, 200),
    ("GET", "/api/v1/services/mine"): spec(401, 200),
    ("GET", "/api/v1/contracts"): spec(401, 200),
    ("GET", "/api/v1/me/invitations"): spec(401, 200),
    ("POST", "/api/v1/projects"): spec(401, 201, lambda w, who: {"json": project_body(
        title=f"{who.title()}'s own project")}),
    ("POST", "/api/v1/services"): spec(401, 201, lambda w, who: {"json": service_body(
        title=f"I will do {who}'s own work")}),
    # -- marketplace API: A's things (a draft project, C's accepted proposal, a contract, a draft service)
    ("GET", "/api/v1/projects/{project_id:uuid}"): spec(404, 404),
    ("PATCH", "/api/v1/projects/{project_id:uuid}"): spec(401, 404, lambda w, who: {"json": {
        "title": "Hijacked project"}}),
    ("POST", "/api/v1/projects/{project_id:uuid}/publish"): spec(401, 404),
    ("POST", "/api/v1/projects/{project_id:uuid}/close"): spec(401, 404),
    ("POST", "/api/v1/projects/{project_id:uuid}/cancel"): spec(401, 404),
    ("POST", "/api/v1/projects/{project_id:uuid}/invites"): spec(401, 404, lambda w, who: {"json": {
        "developer_id": w.b.id, "message": "Planted"}}),
    ("GET", "/api/v1/projects/{project_id:uuid}/proposals"): spec(401, 404),
    ("POST", "/api/v1/projects/{project_id:uuid}/proposals"): spec(401, 404, _bid_json),
    ("GET", "/api/v1/proposals/{proposal_id:uuid}"): spec(401, 404),
    ("PATCH", "/api/v1/proposals/{proposal_id:uuid}"): spec(401, 404, lambda w, who: {"json": {
        "cover_letter": "A hijacked cover letter of twenty characters."}}),
    ("POST", "/api/v1/proposals/{proposal_id:uuid}/withdraw"): spec(401, 404),
    ("POST", "/api/v1/proposals/{proposal_id:uuid}/shortlist"): spec(401, 404),
    ("POST", "/api/v1/proposals/{proposal_id:uuid}/decline"): spec(401, 404, lambda w, who: {"json": {
        "message": "Planted"}}),
    ("POST", "/api/v1/proposals/{proposal_id:uuid}/accept"): spec(401, 404),
    ("POST", "/api/v1/projects/{project_id:uuid}/attachments"): spec(401, 404, _png("file")),
    ("GET", "/api/v1/projects/{project_id:uuid}/attachments/{attachment_id:uuid}"): spec(404, 404),
    ("DELETE", "/api/v1/projects/{project_id:uuid}/attachments/{attachment_id:uuid}"): spec(401, 404),
    ("POST", "/api/v1/proposals/{proposal_id:uuid}/attachments"): spec(401, 404, _png("file")),
    ("GET", "/api/v1/proposals/{proposal_id:uuid}/attachments/{attachment_id:uuid}"): spec(404, 404),
    ("DELETE", "/api/v1/proposals/{proposal_id:uuid}/attachments/{attachment_id:uuid}"): spec(401, 404),
    ("GET", "/api/v1/contracts/{contract_id:uuid}"): spec(401, 404),
    ("GET", "/api/v1/contracts/{contract_id:uuid}/activity"): spec(401, 404),
    ("POST", "/api/v1/contracts/{contract_id:uuid}/milestones"): spec(401, 404, lambda w, who: {"json": {
        "title": "Planted", "amount": 100}}),
    ("POST", "/api/v1/contracts/{contract_id:uuid}/complete"): spec(401, 404),
    ("POST", "/api/v1/contracts/{contract_id:uuid}/cancel"): spec(401, 404),
    ("POST", "/api/v1/contracts/{contract_id:uuid}/files"): spec(401, 404, _png("file")),
    ("GET", "/api/v1/contracts/{contract_id:uuid}/files/{file_id:uuid}"): spec(401, 404),
    ("DELETE", "/api/v1/contracts/{contract_id:uuid}/files/{file_id:uuid}"): spec(401, 404),
    ("POST", "/api/v1/milestones/{milestone_id:uuid}/accept"): spec(401, 404),
    ("POST", "/api/v1/milestones/{milestone_id:uuid}/dispute"): spec(401, 404, lambda w, who: {"json": {
        "reason": "A planted dispute reason."}}),
    ("GET", "/api/v1/disputes"): spec(401, 200),
    ("GET", "/api/v1/disputes/{dispute_id:uuid}"): spec(401, 404),
    ("POST", "/api/v1/disputes/{dispute_id:uuid}/evidence"): spec(401, 404, lambda w, who: {"json": {
        "message": "Planted"}}),
    ("GET", "/api/v1/admin/disputes"): spec(401, 403),
    ("POST", "/api/v1/admin/disputes/{dispute_id:uuid}/resolve"): spec(401, 403, lambda w, who: {"json": {
        "developer_amount": 0, "note": "Planted"}}),
    ("GET", "/api/v1/disputes/{dispute_id:uuid}/files/{file_id:uuid}"): spec(401, 404),
    ("POST", "/api/v1/contracts/{contract_id:uuid}/reviews"): spec(401, 404, lambda w, who: {"json": {
        "rating": 5, "ratings": {"quality": 5, "communication": 5, "timeliness": 5}, "comment": "Planted"}}),
    ("GET", "/api/v1/contracts/{contract_id:uuid}/reviews"): spec(401, 404),
    ("GET", "/api/v1/users/{user_id:uuid}/reviews"): spec(200, 200),
    ("POST", "/api/v1/reviews/{review_id:uuid}/reply"): spec(401, 404, lambda w, who: {"json": {
        "body": "Planted"}}),
    ("POST", "/api/v1/milestones/{milestone_id:uuid}/fund"): spec(401, 404, lambda w, who: {"json": {
        "payment_method": "4242 4242 4242 4242"}}),
    ("POST", "/api/v1/milestones/{milestone_id:uuid}/submit"): spec(401, 404, lambda w, who: {"json": {
        "note": "Planted"}}),
    ("POST", "/api/v1/milestones/{milestone_id:uuid}/request-changes"): spec(401, 404, lambda w, who: {
        "json": {"message": "Planted"}}),
    ("POST", "/api/v1/milestones/{milestone_id:uuid}/release"): spec(401, 404, lambda w, who: {"json": {
        "amount": 100}}),
    ("POST", "/api/v1/milestones/{milestone_id:uuid}/approve"): spec(401, 404),
    ("POST", "/api/v1/milestones/{milestone_id:uuid}/cancel"): spec(401, 404),
    # -- API: money of one's own (B's wallet is empty; A's never shows)
    ("GET", "/api/v1/wallet"): spec(401, 200),
    # -- API: notifications (B's own, empty; A's never show)
    ("GET", "/api/v1/notifications"): spec(401, 200),
    ("POST", "/api/v1/notifications/{notification_id:uuid}/read"): spec(401, 404),
    ("POST", "/api/v1/notifications/read-all"): spec(401, 204),
    ("GET", "/api/v1/me/notification-preferences"): spec(401, 200),
    ("PUT", "/api/v1/me/notification-preferences"): spec(401, 200, lambda w, who: {"json": {"choices": [
        {"category": "payments", "channel": "email", "enabled": False}]}}),
    ("POST", "/api/v1/notifications/unsubscribe"): spec(400, 400),
    # -- API: chat (B's own list is empty; A's conversation is a 404)
    ("GET", "/api/v1/conversations"): spec(401, 200),
    ("POST", "/api/v1/conversations"): spec(401, 200, lambda w, who: {"json": {"user_id": w.a.id}}),
    ("GET", "/api/v1/conversations/{conversation_id:uuid}"): spec(401, 404),
    ("GET", "/api/v1/conversations/{conversation_id:uuid}/messages"): spec(401, 404),
    ("POST", "/api/v1/conversations/{conversation_id:uuid}/messages"): spec(401, 404, lambda w, who: {
        "json": {"body": "Planted"}}),
    ("POST", "/api/v1/conversations/{conversation_id:uuid}/read"): spec(401, 404),
    ("POST", "/api/v1/conversations/{conversation_id:uuid}/files"): spec(401, 404, _png("file")),
    ("GET", "/api/v1/conversations/{conversation_id:uuid}/files/{file_id:uuid}"): spec(401, 404),
    ("PATCH", "/api/v1/messages/{message_id:uuid}"): spec(401, 404, lambda w, who: {"json": {
        "body": "Planted"}}),
    ("DELETE", "/api/v1/messages/{message_id:uuid}"): spec(401, 404),
    ("PUT", "/api/v1/users/{user_id:uuid}/block"): spec(401, 204, about_a=True),
    ("DELETE", "/api/v1/users/{user_id:uuid}/block"): spec(401, 204, about_a=True),
    ("GET", "/api/v1/wallet/transactions"): spec(401, 200),
    ("GET", "/api/v1/wallet/transactions.csv"): spec(401, 200),
    ("POST", "/api/v1/wallet/payouts"): spec(401, 404, lambda w, who: {"json": {
        "amount": 1_000, "currency": "USD", "payout_method_id": w.a_payout_method}}),
    ("GET", "/api/v1/wallet/payout-methods"): spec(401, 200),
    ("POST", "/api/v1/wallet/payout-methods"): spec(401, 201, lambda w, who: {"json": {
        "account_number": "000123456789"}}),
    ("DELETE", "/api/v1/wallet/payout-methods/{payout_method_id:uuid}"): spec(401, 404),
    # -- API: for payment gateways; unsigned, so refused
    ("POST", "/api/v1/payments/webhooks/{gateway_id:str}"): spec(400, 400),
    ("GET", "/api/v1/services/{service_id:uuid}"): spec(404, 404),
    ("PATCH", "/api/v1/services/{service_id:uuid}"): spec(401, 404, lambda w, who: {"json": {
        "title": "I will hijack your service"}}),
    ("DELETE", "/api/v1/services/{service_id:uuid}"): spec(401, 404),
    ("POST", "/api/v1/services/{service_id:uuid}/publish"): spec(401, 404),
    ("POST", "/api/v1/services/{service_id:uuid}/pause"): spec(401, 404),
    ("POST", "/api/v1/services/{service_id:uuid}/resume"): spec(401, 404),
    ("POST", "/api/v1/services/{service_id:uuid}/gallery"): spec(401, 404, _png("file")),
    ("POST", "/api/v1/services/{service_id:uuid}/orders"): spec(401, 404, lambda w, who: {"json": {
        "package": "basic"}}),
    # -- marketplace theme pages
    ("GET", "/projects"): spec(200, 200),
    ("GET", "/dashboard"): spec(TO_LOGIN, 200),
    ("GET", "/projects/new"): spec(TO_LOGIN, 200),
    ("POST", "/projects/new"): spec(TO_LOGIN, 303, _project_form),
    ("GET", "/projects/{project_id:uuid}"): spec(404, 404),
    ("GET", "/projects/{project_id:uuid}/edit"): spec(TO_LOGIN, 404),
    ("POST", "/projects/{project_id:uuid}/edit"): spec(TO_LOGIN, 404, _project_form),
    ("POST", "/projects/{project_id:uuid}/publish"): spec(TO_LOGIN, 404),
    ("POST", "/projects/{project_id:uuid}/close"): spec(TO_LOGIN, 404),
    ("POST", "/projects/{project_id:uuid}/cancel"): spec(TO_LOGIN, 404),
    ("POST", "/projects/{project_id:uuid}/invites"): spec(TO_LOGIN, 404, lambda w, who: {"data": {
        "developer": w.b.id, "message": "Planted"}}),
    ("POST", "/projects/{project_id:uuid}/proposals"): spec(TO_LOGIN, 404, _bid_form),
    ("GET", "/proposals/{proposal_id:uuid}/edit"): spec(TO_LOGIN, 404),
    ("POST", "/proposals/{proposal_id:uuid}/edit"): spec(TO_LOGIN, 404, _bid_form),
    ("POST", "/proposals/{proposal_id:uuid}/withdraw"): spec(TO_LOGIN, 404),
    ("POST", "/proposals/{proposal_id:uuid}/shortlist"): spec(TO_LOGIN, 404),
    ("POST", "/proposals/{proposal_id:uuid}/decline"): spec(TO_LOGIN, 404, lambda w, who: {"data": {
        "message": "Planted"}}),
    ("POST", "/projects/{project_id:uuid}/attachments/{attachment_id:uuid}/delete"): spec(TO_LOGIN, 404),
    ("POST", "/proposals/{proposal_id:uuid}/attachments/{attachment_id:uuid}/delete"): spec(TO_LOGIN, 404),
    ("POST", "/proposals/{proposal_id:uuid}/accept"): spec(TO_LOGIN, 404, lambda w, who: {"data": {
        "confirm": "yes"}}),
    ("GET", "/contracts/{contract_id:uuid}"): spec(TO_LOGIN, 404),
    # -- wallet pages: one's own, and never A's payout methods or receipts
    ("GET", "/wallet"): spec(TO_LOGIN, 200),
    ("GET", "/notifications"): spec(TO_LOGIN, 200),
    ("GET", "/messages"): spec(TO_LOGIN, 200),
    ("GET", "/messages/{conversation_id:uuid}"): spec(TO_LOGIN, 404),
    ("POST", "/messages/{conversation_id:uuid}"): spec(TO_LOGIN, 404, lambda w, who: {"data": {
        "body": "Planted"}}),
    ("POST", "/messages/{conversation_id:uuid}/block"): spec(TO_LOGIN, 404),
    ("POST", "/messages/start"): spec(TO_LOGIN, 303, lambda w, who: {"data": {"user_id": w.a.id}}),
    ("GET", "/notifications/{notification_id:uuid}/open"): spec(TO_LOGIN, 404),
    ("POST", "/notifications/read-all"): spec(TO_LOGIN, 303),
    ("GET", "/notifications/unsubscribe"): spec(400, 400),
    ("POST", "/notifications/unsubscribe"): spec(400, 400, lambda w, who: {"data": {"token": "forged"}}),
    ("GET", "/settings/notifications"): spec(TO_LOGIN, 200),
    ("POST", "/settings/notifications"): spec(TO_LOGIN, MINE, lambda w, who: {"data": {
        "on": ["payments:in_app"]}}),
    ("GET", "/wallet/payout"): spec(TO_LOGIN, 200),
    ("POST", "/wallet/payout"): spec(TO_LOGIN, 400, lambda w, who: {"data": {
        "amount": "10", "currency": "USD", "payout_method_id": w.a_payout_method}}),
    ("GET", "/wallet/payout-methods"): spec(TO_LOGIN, 200),
    ("POST", "/wallet/payout-methods"): spec(TO_LOGIN, 303, lambda w, who: {"data": {
        "account_number": "000123456789"}}),
    ("POST", "/wallet/payout-methods/{payout_method_id:uuid}/delete"): spec(TO_LOGIN, 404),
    ("GET", "/wallet/receipts/{transaction_id:uuid}"): spec(TO_LOGIN, 404),
    ("GET", "/contracts/{contract_id:uuid}/milestones/{milestone_id:uuid}/checkout"): spec(TO_LOGIN, 404),
    ("POST", "/contracts/{contract_id:uuid}/milestones/{milestone_id:uuid}/checkout"): spec(
        TO_LOGIN, 404, lambda w, who: {"data": {"card_number": "4242424242424242"}}),
    **{("POST", f"/contracts/{{contract_id:uuid}}/milestones/{{milestone_id:uuid}}/{action}"): spec(
        TO_LOGIN, 404, lambda w, who: {"data": {"note": "Planted", "message": "Planted", "amount": "1",
                                                "reason": "A planted reason."}})
       for action in ("submit", "request-changes", "approve", "release", "cancel", "accept", "dispute")},
    ("POST", "/contracts/{contract_id:uuid}/milestones"): spec(TO_LOGIN, 404, lambda w, who: {"data": {
        "title": "Planted", "amount": "1"}}),
    ("POST", "/contracts/{contract_id:uuid}/complete"): spec(TO_LOGIN, 404),
    ("POST", "/contracts/{contract_id:uuid}/cancel"): spec(TO_LOGIN, 404),
    ("POST", "/contracts/{contract_id:uuid}/reviews"): spec(TO_LOGIN, 404, lambda w, who: {"data": {
        "rating": "5", "quality": "5", "communication": "5", "timeliness": "5", "comment": "Planted"}}),
    ("POST", "/contracts/{contract_id:uuid}/reviews/{review_id:uuid}/reply"): spec(
        TO_LOGIN, 404, lambda w, who: {"data": {"body": "Planted"}}),
    ("GET", "/users/{user_id:uuid}/reviews"): spec(200, 200),
    ("GET", "/disputes/{dispute_id:uuid}"): spec(TO_LOGIN, 404),
    ("POST", "/disputes/{dispute_id:uuid}/evidence"): spec(TO_LOGIN, 404, lambda w, who: {"data": {
        "message": "Planted"}}),
    ("POST", "/disputes/{dispute_id:uuid}/resolve"): spec(TO_LOGIN, 404, lambda w, who: {"data": {
        "developer_amount": "0", "note": "Planted"}}),
    ("GET", "/admin/disputes"): spec(TO_LOGIN, 403),
    ("GET", "/admin"): spec(TO_LOGIN, 403),
    ("GET", "/admin/users"): spec(TO_LOGIN, 403),
    ("GET", "/admin/users/{user_id:uuid}"): spec(TO_LOGIN, 403),
    ("POST", "/admin/users/{user_id:uuid}"): spec(TO_LOGIN, 403, lambda w, who: {"data": {
        "action": "suspend", "reason": "Planted"}}),
    ("GET", "/admin/reports"): spec(TO_LOGIN, 403),
    ("POST", "/admin/reports/{report_id:uuid}"): spec(TO_LOGIN, 403, lambda w, who: {"data": {
        "action": "dismiss"}}),
    ("GET", "/admin/listings"): spec(TO_LOGIN, 403),
    ("POST", "/admin/listings/{listing_id:uuid}"): spec(TO_LOGIN, 403, lambda w, who: {"data": {
        "action": "approve"}}),
    ("GET", "/admin/settings"): spec(TO_LOGIN, 403),
    ("POST", "/admin/settings"): spec(TO_LOGIN, 403, lambda w, who: {"data": {
        "payments.developer_fee_percent": "0"}}),
    ("GET", "/admin/audit"): spec(TO_LOGIN, 403),
}


def _private_leaks(value: Any, a_id: str) -> list[str]:
    """Private fields of A anywhere in a JSON answer."""
    found: list[str] = []
    if isinstance(value, dict):
        if a_id in (str(value.get("id")), str(value.get("user_id"))) and PRIVATE_KEYS & set(value):
            found.append(f"{sorted(PRIVATE_KEYS & set(value))} of A")
        for item in value.values():
            found += _private_leaks(item, a_id)
    elif isinstance(value, list):
        for item in value:
            found += _private_leaks(item, a_id)
    return found


async def _a_snapshot(app: App, w: World) -> dict[str, Any]:
    a = w.a
    me = await app.client.get(f"{API}/me", headers=a.auth)
    assert me.status_code == 200, f"A's own token must still work: {me.status_code}"
    portfolio = (await app.client.get(f"{API}/users/{a.id}/portfolio")).json()["items"]

    async def mine(url: str) -> Any:
        response = await app.client.get(f"{API}/{url}", headers=a.auth)
        assert response.status_code == 200, f"A must still see {url}: {response.status_code}"
        return response.json()

    return {"me": me.json(), "portfolio": [(i["id"], i["title"], [x["key"] for x in i["images"]])
                                           for i in portfolio],
            "projects": await mine("projects/mine"), "services": await mine("services/mine"),
            "contracts": await mine("contracts"),
            "proposals": [_settled(p) for p in await mine(f"projects/{w.a_open_project}/proposals")],
            "draft": await mine(f"projects/{w.a_project}"), "service": await mine(f"services/{w.a_service}"),
            "contract": await mine(f"contracts/{w.a_contract}"),
            "payout_methods": await mine("wallet/payout-methods"),
            "proposal": _settled(await mine(f"proposals/{w.a_proposal}"))}


def _settled(proposal: dict[str, Any]) -> dict[str, Any]:
    """A proposal without its developer's reputation, which event handlers derive a moment
    after the contract's steps (not something the walk could change)."""
    developer = {k: v for k, v in proposal["developer"].items() if k not in ("rating", "reputation")}
    return {**proposal, "developer": developer}


async def _a_market(app: App, world: World) -> None:
    """A's draft project and draft service, and an open project on which A hired C."""
    a = world.a

    async def created(url: str, body: dict[str, Any], who: Person = a, status: int = 201) -> dict[str, Any]:
        response = await app.client.post(f"{API}/{url}", headers=who.auth, json=body)
        assert response.status_code == status, response.text
        return response.json()  # type: ignore[no-any-return]

    draft = await created("projects", project_body(title="Alice's secret draft", publish=False))
    assert draft["status"] == "draft"
    world.a_project = draft["id"]
    attached = await app.client.post(f"{API}/projects/{draft['id']}/attachments", headers=a.auth,
                                     files={"file": ("secret-brief.png", png_bytes(), "image/png")})
    assert attached.status_code == 201, attached.text
    world.a_attachment = attached.json()["id"]
    project = await created("projects", project_body(title="Alice's open project"))
    assert project["status"] == "open"
    world.a_open_project = project["id"]
    c = await register(app.client, "carol@example.com", name="Carol", roles=("developer",))
    world.a_proposal = (await created(f"projects/{project['id']}/proposals", proposal_body(project), c))["id"]
    accepted = await created(f"proposals/{world.a_proposal}/accept", {}, status=200)
    assert accepted["proposal"]["status"] == "accepted"
    world.a_contract = accepted["contract_id"]
    contract = await app.client.get(f"{API}/contracts/{world.a_contract}", headers=a.auth)
    world.a_milestone = contract.json()["milestones"][0]["id"]
    uploaded = await app.client.post(f"{API}/contracts/{world.a_contract}/files", headers=a.auth,
                                     files={"file": ("deliverable.png", png_bytes(), "image/png")})
    assert uploaded.status_code == 201, uploaded.text
    world.a_contract_file = uploaded.json()["id"]
    await created(f"milestones/{world.a_milestone}/fund", {"payment_method": "4242424242424242"}, status=200)
    funding = await app.client.get(f"{API}/wallet/transactions", headers=a.auth, params={"kind": "funding"})
    world.a_transaction = funding.json()["items"][0]["id"]
    world.a_payout_method = (await created("wallet/payout-methods", {"account_number": "000123456789"}))["id"]
    world.a_dispute = (await created(f"milestones/{world.a_milestone}/dispute", {
        "reason": "Alice's private dispute reason."}))["id"]

    async def notified() -> list[Any]:
        page = await app.client.get(f"{API}/notifications", headers=a.auth)
        return list(page.json()["items"])

    await eventually(notified, within=10)
    world.a_notification = (await notified())[0]["id"]
    contract = await app.client.get(f"{API}/contracts/{world.a_contract}", headers=a.auth)
    talk = await created("conversations", {
        "user_id": contract.json()["developer_id"], "subject_type": "contract",
        "subject_id": world.a_contract, "message": "Alice's private words"}, status=200)
    world.a_conversation = talk["id"]
    world.a_message = talk["last_message"]["id"]
    service = await created("services", service_body(title="I will build Alice's secret service"))
    assert service["status"] == "draft"
    world.a_service = service["id"]
    world.a_report = (await created("reports", {"subject_type": "profile", "subject_id": c.id,
                                                "reason": "spam"}))["id"]


async def test_stranger_walk(apps: Apps) -> None:
    app = await apps.open(accounts={**RELAXED_LOGIN_LIMITS, "require_verified_email": False})
    a = await register(app.client, "alice.private@example.com", name="Alice")
    await app.client.patch(f"{API}/me", headers=a.auth, json={"headline": "Alice's headline",
                                                              "skills": ["python"]})
    item = (await app.client.post(f"{API}/users/{a.id}/portfolio", headers=a.auth,
                                  json={"title": "Alice's work"})).json()
    assert (await app.client.post(f"{API}/portfolio/{item['id']}/images", headers=a.auth,
                                  files={"file": ("a.png", png_bytes(), "image/png")})).status_code == 201
    b = await register(app.client, "bob@example.com", name="Bob")
    world = World(a=a, b=b, a_item=item["id"], b_browser=await Browser.signed_in(app, b.email),
                  anonymous=await Browser.anonymous(app))
    await _a_market(app, world)
    before = await _a_snapshot(app, world)

    routes: list[tuple[str, str]] = sorted(
        (method, route.path) for route in app.client.app.routes if route.path.startswith(WALKED_PREFIXES)
        for method in route.methods if method not in ("OPTIONS", "HEAD"))
    unknown = [r for r in routes if r not in SPECS]
    unfillable = []
    problems: list[str] = []
    ordered = sorted(routes, key=lambda r: SPECS[r].last if r in SPECS else False)
    for method, path in ordered:
        names = re.findall(r"\{(\w+)(?::\w+)?\}", path)
        if any(name not in FILLABLE for name in names):
            unfillable.append(f"{method} {path}")
            continue
        url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(getattr(world, FILLABLE[m.group(1)])), path)
        known = SPECS.get((method, path))
        theme = not path.startswith("/api/")
        targets_a = bool(names)
        for who in ("anonymous", "stranger"):
            kwargs: dict[str, Any] = known.body(world, who) if known and known.body else {}
            if not kwargs and method in ("POST", "PUT", "PATCH") and not theme:
                kwargs = {"json": {}}
            headers: dict[str, str] = {}
            if theme:
                headers["Accept"] = "text/html"
                visitor = world.anonymous if who == "anonymous" else world.b_browser
                if method != "GET":
                    kwargs.setdefault("data", {})["csrf_token"] = visitor.csrf()
            else:
                visitor = world.anonymous
                if who == "stranger":
                    headers.update(bearer(b.access))
            response = await visitor.request(method, url, headers=headers, **kwargs)
            status = response.status_code
            label = f"{who} {method} {path} -> {status}"
            if status >= 500:
                problems.append(f"{label}: server error")
            if known is not None:
                expected = known.anonymous if who == "anonymous" else known.stranger
                if status not in expected:
                    problems.append(f"{label}: expected {sorted(expected)}")
                location = response.headers.get("location", "")
                to_login = who == "anonymous" and expected == TO_LOGIN and status in (302, 303)
                if to_login and not location.startswith("/login"):
                    problems.append(f"{label}: redirects to {response.headers.get('location')}")
            if targets_a and method != "GET" and 200 <= status < 300 and not (known and known.about_a):
                problems.append(f"{label}: a write to A's object succeeded")
            if 200 <= status < 300 and any(secret in response.text for secret in world.private_ids):
                problems.append(f"{label}: one of A's private objects is in the answer")
            if a.email.casefold() in response.text.casefold():
                problems.append(f"{label}: A's e-mail address is in the answer")
            if "json" in response.headers.get("content-type", ""):
                problems += [f"{label}: {leak}" for leak in _private_leaks(response.json(), a.id)]
            public_profile = (method, path) == ("GET", "/api/v1/users/{user_id:uuid}")
            if public_profile and status == 200 and PRIVATE_KEYS & set(response.json()):
                problems.append(f"{label}: the public profile has private fields")

    after = await _a_snapshot(app, world)
    assert after == before, "the walk changed A's account"
    assert problems == [], "\n".join(problems)
    missing = [f"{m} {p}" for m, p in unknown] + [f"{r} (path parameters)" for r in unfillable]
    assert missing == [], (
        "The stranger walk does not know these routes: add them to SPECS (expected statuses for an "
        "anonymous visitor and for someone else, and a body) and their path parameters to FILLABLE:\n  "
        + "\n  ".join(missing))
