"""External log-in end to end: the browser round trip through mercato's ``/auth/<id>/login``
and ``/auth/<id>/callback`` against a real Authlib authorization server on loopback, for
GitHub, Google-style OIDC and a generic OIDC provider."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient

from mercato import create_app
from mercato.core.site import Site
from tests.conftest import _delete_streams, _with_database
from tests.oauth_server import CLIENTS, OAuthTestServer, TestUser

BROWSER = {"accept": "text/html"}


def provider_settings(server: OAuthTestServer) -> dict[str, Any]:
    github, google, oidc = CLIENTS["github-client"], CLIENTS["google-client"], CLIENTS["oidc-client"]
    return {
        "github_auth": {"client_id": github.client_id, "client_secret": github.client_secret,
                        **server.github_urls},
        "google_auth": {"client_id": google.client_id, "client_secret": google.client_secret,
                        "discovery_url": server.discovery_url},
        "oidc_auth": {"providers": {"company": {
            "label": "Company SSO", "discovery_url": server.discovery_url,
            "client_id": oidc.client_id, "client_secret": oidc.client_secret}}},
    }


@pytest.fixture
async def client(fresh_oauth_server: OAuthTestServer, make_settings: Any, databases: Any) -> Any:
    settings = make_settings(plugins=provider_settings(fresh_oauth_server),
                             accounts={"require_verified_email": True})
    site = Site(_with_database(settings, await databases.create_migrated(settings)))
    async with AsyncTestClient(create_app(site=site), base_url="http://127.0.0.1:8000") as client:
        client.site = site
        yield client
    await _delete_streams(settings.events.nats_url, {settings.events.stream})


async def round_trip(client: Any, provider: str, *, tamper_state: bool = False,
                     query: dict[str, str] | None = None) -> httpx.Response:
    """Play the browser: start at mercato, visit the provider (which signs the configured
    user in at once), come back to mercato's callback."""
    start = await client.get(f"/auth/{provider}/login?{urlencode(query or {})}", headers=BROWSER,
                             follow_redirects=False)
    if start.status_code != 303:
        return start  # type: ignore[no-any-return]
    async with httpx.AsyncClient(timeout=10) as browser:
        at_provider = await browser.get(start.headers["location"])
    assert at_provider.status_code in (302, 303), at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == f"/auth/{provider}/callback"
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    if tamper_state:
        params["state"] = params["state"][:-2] + "xx"
    return await client.get(f"{back.path}?{urlencode(params)}", headers=BROWSER,  # type: ignore[no-any-return]
                            follow_redirects=False)


async def me(client: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/me", headers={"x-csrf-token": "-"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("provider", ["github", "google", "company"])
async def test_new_person_signs_up_through_a_provider(client: Any, fresh_oauth_server: OAuthTestServer,
                                                      provider: str) -> None:
    fresh_oauth_server.next_user = TestUser(sub=f"{provider}-42", email=f"grace-{provider}@example.com",
                                            name="Grace Hopper", github_id=42)
    done = await round_trip(client, provider, query={"next": "/settings/profile", "roles": "developer"})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/settings/profile"
    assert "mercato_session" in client.cookies
    person = await me(client)
    assert person["email"] == f"grace-{provider}@example.com"
    assert person["email_verified"] is True
    assert person["roles"] == ["developer"]
    assert person["has_password"] is False
    assert person["linked_providers"] == [provider]


async def test_providers_are_listed_for_the_login_page(client: Any) -> None:
    listed = (await client.get("/api/v1/auth/providers")).json()
    assert listed["password"] is True
    assert {p["id"] for p in listed["providers"]} == {"github", "google", "company"}
    assert all(p["login_url"] == f"/auth/{p['id']}/login" for p in listed["providers"])


async def verify_from_mailbox(client: Any, email: str) -> None:
    mail = next(m for m in client.site.mail.mailbox() if m.to.casefold() == email.casefold())
    token = parse_qs(urlsplit(re.search(r"https?://\S+", mail.text).group(0)).query)["token"][0]
    assert (await client.post("/api/v1/auth/verify-email", json={"token": token})).status_code == 200


async def test_existing_account_is_linked_by_verified_email(
    client: Any, fresh_oauth_server: OAuthTestServer,
) -> None:
    registered = await client.post("/api/v1/auth/register", json={
        "email": "Ada@Example.com", "password": "analytical engine notes", "display_name": "Ada",
        "roles": ["client"]})
    assert registered.status_code == 201
    await verify_from_mailbox(client, "ada@example.com")
    fresh_oauth_server.next_user = TestUser(sub="ada-sub", email="ada@example.com", email_verified=True)
    done = await round_trip(client, "company")
    assert done.status_code == 303
    person = await me(client)
    assert person["email"] == "Ada@example.com"
    assert person["has_password"] is True
    assert person["linked_providers"] == ["company"]
    api = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=api)).status_code == 200  # her sessions go on

    # signing in again finds the same account through the link, whatever the e-mail says now
    fresh_oauth_server.next_user = TestUser(sub="ada-sub", email="other@example.com", email_verified=True)
    client.cookies.clear()
    await round_trip(client, "company")
    assert (await me(client))["id"] == person["id"]


async def test_pre_registered_unverified_account_loses_the_squatters_password_and_sessions(
    client: Any, fresh_oauth_server: OAuthTestServer,
) -> None:
    squatter = await client.post("/api/v1/auth/register", json={
        "email": "grace@example.com", "password": "squatter knows this one", "display_name": "Grace?",
        "roles": ["client"]})
    assert squatter.status_code == 201
    fresh_oauth_server.next_user = TestUser(sub="grace-sub", email="grace@example.com", email_verified=True)
    done = await round_trip(client, "google")
    assert done.status_code == 303
    person = await me(client)
    assert person["email_verified"] is True
    assert person["has_password"] is False
    assert person["linked_providers"] == ["google"]
    stale = {"Authorization": f"Bearer {squatter.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=stale)).status_code == 401
    client.cookies.clear()
    login = await client.post("/api/v1/auth/login", json={"email": "grace@example.com",
                                                          "password": "squatter knows this one"})
    assert login.status_code == 401


async def test_unverified_email_is_never_linked(client: Any, fresh_oauth_server: OAuthTestServer) -> None:
    registered = await client.post("/api/v1/auth/register", json={
        "email": "victim@example.com", "password": "analytical engine notes", "display_name": "Victim",
        "roles": ["client"]})
    assert registered.status_code == 201
    fresh_oauth_server.next_user = TestUser(sub="attacker", email="victim@example.com", email_verified=False)
    client.cookies.clear()
    page = await round_trip(client, "google")
    assert page.status_code == 400
    assert "not verified" in page.text
    assert "mercato_session" not in client.cookies


async def test_tampered_state_is_refused(client: Any) -> None:
    page = await round_trip(client, "github", tamper_state=True)
    assert page.status_code == 400
    assert "start again" in page.text
    assert "mercato_session" not in client.cookies


async def test_callback_without_the_flow_cookie_is_refused(client: Any) -> None:
    start = await client.get("/auth/company/login", headers=BROWSER, follow_redirects=False)
    async with httpx.AsyncClient(timeout=10) as browser:
        at_provider = await browser.get(start.headers["location"])
    back = urlsplit(at_provider.headers["location"])
    client.cookies.clear()  # a callback the browser did not start (login CSRF)
    page = await client.get(f"{back.path}?{back.query}", headers=BROWSER)
    assert page.status_code == 400
    assert "mercato_session" not in client.cookies


async def test_wrong_nonce_is_refused(client: Any, fresh_oauth_server: OAuthTestServer) -> None:
    fresh_oauth_server.wrong_nonce = True
    page = await round_trip(client, "company")
    assert page.status_code == 400
    assert "could not be verified" in page.text
    assert "mercato_session" not in client.cookies


@pytest.mark.parametrize("provider", ["github", "google"])
async def test_provider_refusal_shows_a_clear_page(client: Any, fresh_oauth_server: OAuthTestServer,
                                                   provider: str) -> None:
    fresh_oauth_server.deny = True
    page = await round_trip(client, provider)
    assert page.status_code == 400
    assert "cancelled" in page.text.lower()
    assert "<html" in page.text.lower()


async def test_provider_down_shows_a_clear_page(client: Any, fresh_oauth_server: OAuthTestServer) -> None:
    fresh_oauth_server.down = True
    page = await client.get("/auth/company/login", headers=BROWSER, follow_redirects=False)
    assert page.status_code == 503
    assert "not answering right now" in page.text


async def test_unknown_provider_is_404(client: Any) -> None:
    assert (await client.get("/auth/nope/login", headers=BROWSER)).status_code == 404


async def test_next_cannot_leave_the_site(client: Any, fresh_oauth_server: OAuthTestServer) -> None:
    done = await round_trip(client, "company", query={"next": "//evil.example/steal"})
    assert done.status_code == 303
    assert done.headers["location"] == "/"


async def test_suspended_account_cannot_sign_in_through_a_provider(
    client: Any, fresh_oauth_server: OAuthTestServer,
) -> None:
    from sqlalchemy import update

    from mercato.core.accounts.models import User

    fresh_oauth_server.next_user = TestUser(sub="sus", email="sus@example.com")
    await round_trip(client, "company")
    person = await me(client)

    async def suspend() -> None:
        async with client.site.db.transaction() as session:
            await session.execute(
                update(User).where(User.email_key == "sus@example.com").values(status="suspended"))

    await asyncio.to_thread(client.blocking_portal.call, suspend)  # the app's loop owns the pool
    client.cookies.clear()
    page = await round_trip(client, "company")
    assert page.status_code == 400, person
    assert "suspended" in page.text
