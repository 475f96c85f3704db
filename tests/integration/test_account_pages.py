"""The theme's account pages, driven like a browser without JavaScript: forms with their CSRF
token, cookies, redirects, and the links the site mails (read from the ``file`` mailbox).

One app per test (``AsyncTestClient`` runs it, lifespan included); several "browsers" share
its client, each with its own cookie jar.
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from mercato import create_app, hookimpl
from mercato.core.plugins import build_plugin_manager
from mercato.core.site import Site
from mercato.plugins.password_auth.routes import LOGIN_FAILED
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database

PASSWORD = "Tangerine-Orbit-4417"
NEW_PASSWORD = "Quiet-Marmot-Lantern-92"
HTML = {"Accept": "text/html"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://[^\s\"<]+?(/[a-z-]+\?token=[\w-]+)")


class Browser:
    """One browser: its own cookies on the app's shared test client."""

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.client = client
        self.jar = httpx.Cookies()

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        self.client.cookies = self.jar
        try:
            return await self.client.request(method, path, headers=HTML, **options)
        finally:
            self.jar = httpx.Cookies(self.client.cookies)

    async def get(self, path: str, *, follow: bool = True) -> httpx.Response:
        return await self.request("GET", path, follow_redirects=follow)

    async def csrf(self) -> str:
        """The token of the forms this browser is shown now (signed in or not)."""
        page = await self.get("/login")
        found = CSRF.search(page.text)
        assert found, page.text
        return found.group(1)

    async def post(self, path: str, data: dict[str, Any] | None = None, *,
                   files: dict[str, Any] | None = None, csrf: bool = True) -> httpx.Response:
        """Submit a form (with the page's CSRF token unless ``csrf`` is False); no redirects followed."""
        fields = dict(data or {})
        if csrf:
            fields["csrf_token"] = await self.csrf()
        return await self.request("POST", path, data=fields, files=files, follow_redirects=False)

    @property
    def session_cookie(self) -> str | None:
        return self.jar.get("mercato_session")


class Pages:
    """A running app and a way to open browsers on it."""

    def __init__(self, client: AsyncTestClient[Any], site: Site) -> None:
        self.client = client
        self.site = site

    def browser(self) -> Browser:
        return Browser(self.client)

    async def link_to(self, address: str, path: str) -> str:
        """The path + token of the newest mailed link to ``path`` for ``address`` (some mails
        are sent in the background, so wait a little for it)."""
        for _ in range(100):
            for mail in self.site.mail.mailbox():
                if mail.to.casefold() == address.casefold():
                    for found in LINK.finditer(mail.text):
                        if found.group(1).startswith(path + "?"):
                            return found.group(1)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail to {address} with a {path} link")

    def mail_count(self, address: str) -> int:
        return sum(1 for mail in self.site.mail.mailbox() if mail.to.casefold() == address.casefold())


@pytest.fixture
async def open_pages(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Any]:
    clients: list[tuple[AsyncTestClient[Any], Any]] = []

    async def start(extra: list[tuple[str, object]] | None = None, **overrides: Any) -> Pages:
        overrides.setdefault("accounts", {})
        overrides["accounts"] = {"login_attempts_per_minute": 1000, "login_attempts_per_account": 1000,
                                 **overrides["accounts"]}
        settings = make_settings(**overrides)
        settings = _with_database(settings, await databases.create_migrated(settings))
        site = Site(settings, pm=build_plugin_manager(settings, extra=extra) if extra else None)
        client: AsyncTestClient[Any] = AsyncTestClient(create_app(site=site))
        await client.__aenter__()
        clients.append((client, settings))
        return Pages(client, site)

    yield start
    for client, _ in reversed(clients):
        await client.__aexit__(None, None, None)
    if clients:
        await _delete_streams(clients[0][1].events.nats_url, {s.events.stream for _, s in clients})


@pytest.fixture
async def pages(open_pages: Any) -> Pages:
    return await open_pages()  # type: ignore[no-any-return]


def png(color: tuple[int, int, int] = (200, 60, 90), size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


async def sign_up(browser: Browser, email: str, *, name: str = "Ada Lovelace",
                  roles: tuple[str, ...] = ("developer",), password: str = PASSWORD) -> str:
    """Sign up through the form; returns the new account's id."""
    form = await browser.get("/signup")
    assert form.status_code == 200
    response = await browser.post("/signup", {"display_name": name, "email": email, "password": password,
                                              "roles": list(roles)})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/settings/profile?welcome=1"
    assert browser.session_cookie
    me = await browser.get("/api/v1/me")
    assert me.status_code == 200, me.text
    return str(me.json()["id"])


async def log_in(browser: Browser, email: str, password: str = PASSWORD,
                 next_url: str = "") -> httpx.Response:
    return await browser.post("/login", {"email": email, "password": password, "next": next_url})


# ---------------------------------------------------------------------------
# Sign-up, verification, log-in, log-out
# ---------------------------------------------------------------------------


async def test_sign_up_through_the_form_and_verify_by_the_mailed_link(pages: Pages) -> None:
    ada = pages.browser()
    page = await ada.get("/signup")
    assert 'name="roles" value="developer"' in page.text
    assert "a passphrase of 3\u20134 words works well" in page.text
    assert 'autocomplete="new-password"' in page.text
    await sign_up(ada, "ada@example.com")

    welcome = await ada.get("/settings/profile?welcome=1")
    assert welcome.status_code == 200
    assert "Welcome!" in welcome.text
    assert "Verify your e-mail address to post, bid and get paid" in welcome.text
    assert "Ada Lovelace" in welcome.text  # the header's account menu

    link = await pages.link_to("ada@example.com", "/verify-email")
    verified = await ada.get(link)
    assert verified.status_code == 200
    assert "Your e-mail address is verified" in verified.text
    assert "Verify your e-mail address to post" not in verified.text
    account = await ada.get("/settings/account")
    assert ">Verified<" in account.text

    again = await ada.get(link)
    assert again.status_code == 400
    assert "expired or was already used" in again.text


async def test_a_new_verification_link_can_be_asked_for(pages: Pages) -> None:
    ada = pages.browser()
    await sign_up(ada, "ada@example.com")
    assert pages.mail_count("ada@example.com") == 1
    resent = await ada.post("/verify-email/resend")
    assert resent.status_code == 303
    assert resent.headers["location"] == "/settings/account?sent=verification"
    assert pages.mail_count("ada@example.com") == 2
    shown = await ada.get(resent.headers["location"])
    assert "We sent a new verification link" in shown.text


async def test_the_banner_is_not_shown_when_verification_is_not_required(open_pages: Any) -> None:
    pages = await open_pages(accounts={"require_verified_email": False})
    ada = pages.browser()
    await sign_up(ada, "ada@example.com")
    page = await ada.get("/settings/profile")
    assert "Verify your e-mail address to post" not in page.text


async def test_forms_without_the_csrf_token_are_refused(pages: Pages) -> None:
    browser = pages.browser()
    await browser.get("/signup")
    data = {"display_name": "Eve", "email": "eve@example.com", "password": PASSWORD, "roles": ["client"]}
    missing = await browser.post("/signup", data, csrf=False)
    assert missing.status_code == 403
    forged = await browser.post("/signup", {**data, "csrf_token": "x" * 40}, csrf=False)
    assert forged.status_code == 403
    assert (await browser.post("/login", {"email": "eve@example.com", "password": PASSWORD},
                               csrf=False)).status_code == 403
    assert browser.session_cookie is None

    await sign_up(browser, "eve@example.com", name="Eve")
    assert (await browser.post("/logout", csrf=False)).status_code == 403
    assert (await browser.post("/settings/profile", {"display_name": "Mallory", "roles": ["client"]},
                               csrf=False)).status_code == 403
    assert (await browser.get("/settings/profile")).status_code == 200, "still signed in"


async def test_log_in_failures_say_the_same_for_an_unknown_address(pages: Pages) -> None:
    await sign_up(pages.browser(), "ada@example.com")
    browser = pages.browser()
    wrong = await log_in(browser, "ada@example.com", "Not-The-Password-1")
    unknown = await log_in(browser, "nobody@example.com", PASSWORD)
    for response, email in ((wrong, "ada@example.com"), (unknown, "nobody@example.com")):
        assert response.status_code == 400
        assert LOGIN_FAILED.replace("'", "&#39;") in response.text
        assert f'value="{email}"' in response.text, "the address is kept"
        assert 'type="password"' in response.text
    assert "Not-The-Password-1" not in wrong.text
    assert browser.session_cookie is None


async def test_log_in_goes_to_a_safe_next_page(pages: Pages) -> None:
    await sign_up(pages.browser(), "ada@example.com")
    browser = pages.browser()
    form = await browser.get("/login?next=/settings/account")
    assert 'name="next" value="/settings/account"' in form.text
    ok = await log_in(browser, "ADA@example.com", next_url="/settings/account")
    assert ok.status_code == 303
    assert ok.headers["location"] == "/settings/account"
    assert browser.session_cookie
    assert (await browser.get("/settings/account")).status_code == 200

    other = pages.browser()
    evil = await log_in(other, "ada@example.com", next_url="//evil.example/steal")
    assert evil.status_code == 303
    assert evil.headers["location"] == "/"


async def test_pages_that_need_a_session_send_browsers_to_log_in(pages: Pages) -> None:
    browser = pages.browser()
    for path in ("/settings/profile", "/settings/portfolio", "/settings/account"):
        response = await browser.get(path, follow=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path.replace('/', '%2F')}"
    posted = await browser.post("/settings/profile", {"display_name": "x", "roles": ["client"]})
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/login?next=")


async def test_log_out_ends_the_session_for_good(pages: Pages) -> None:
    ada = pages.browser()
    await sign_up(ada, "ada@example.com")
    stolen = ada.session_cookie
    header = await ada.get("/")
    assert 'action="/logout"' in header.text
    out = await ada.post("/logout")
    assert out.status_code == 303
    assert out.headers["location"] == "/"
    assert ada.session_cookie is None
    assert (await ada.get("/settings/profile", follow=False)).status_code == 303
    home = await ada.get("/")
    assert 'href="/login"' in home.text
    assert 'href="/signup"' in home.text

    replay = pages.browser()
    replay.jar.set("mercato_session", stolen or "")
    assert (await replay.get("/settings/profile", follow=False)).status_code == 303
    assert (await replay.get("/api/v1/me")).status_code == 401


async def test_sign_up_mistakes_are_shown_next_to_the_field(pages: Pages) -> None:
    await sign_up(pages.browser(), "taken@example.com", name="First")
    browser = pages.browser()
    await browser.get("/signup")
    taken = await browser.post("/signup", {"display_name": "Grace Hopper", "email": "Taken@example.com",
                                           "password": PASSWORD, "roles": ["client", "developer"]})
    assert taken.status_code == 409
    assert 'id="email-error"' in taken.text
    assert "already uses this e-mail address" in taken.text
    assert 'value="Grace Hopper"' in taken.text
    assert 'value="developer" checked' in taken.text

    weak = await browser.post("/signup", {"display_name": "Grace Hopper", "email": "grace@example.com",
                                          "password": "password", "roles": ["client"]})
    assert weak.status_code == 400
    assert 'id="password-error"' in weak.text
    assert 'aria-invalid="true"' in weak.text
    assert 'value="grace@example.com"' in weak.text

    no_role = await browser.post("/signup", {"display_name": "Grace Hopper", "email": "grace@example.com",
                                             "password": PASSWORD})
    assert no_role.status_code == 400
    assert "Choose client, developer or both." in no_role.text
    assert browser.session_cookie is None


async def test_log_in_is_rate_limited_on_the_form(open_pages: Any) -> None:
    pages = await open_pages(accounts={"login_attempts_per_account": 2})
    browser = pages.browser()
    for _ in range(2):
        assert (await log_in(browser, "ada@example.com", "Wrong-Password-1")).status_code == 400
    limited = await log_in(browser, "ada@example.com", "Wrong-Password-1")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Try again in" in limited.text
    assert 'value="ada@example.com"' in limited.text


# ---------------------------------------------------------------------------
# Profile, avatar, portfolio, public profile
# ---------------------------------------------------------------------------


PROFILE = {
    "display_name": "Ada Lovelace", "roles": ["developer", "client"],
    "headline": "Analytical engines, Python",
    "bio": "I write **careful** code.\n\n<script>alert(1)</script>", "skills": "python, React,postgres",
    "hourly_rate": "85.50", "currency": "USD", "location": "London", "timezone": "Europe/London",
    "languages": "English, French", "availability": "limited", "github_url": "https://github.com/ada",
    "website_url": "https://ada.example",
}


async def test_profile_edits_show_on_the_public_profile(pages: Pages) -> None:
    ada = pages.browser()
    ada_id = await sign_up(ada, "ada@example.com")
    form = await ada.get("/settings/profile")
    assert '<datalist id="skills-options">' in form.text
    assert ('<option value="PostgreSQL" label="postgres, psql, pg" data-aliases="postgres|psql|pg">'
            in form.text)
    assert '<option value="Europe/Lisbon">' in form.text
    saved = await ada.post("/settings/profile", PROFILE)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/settings/profile?saved=1"
    again = await ada.get("/settings/profile?saved=1")
    assert "Your profile is saved." in again.text
    assert 'value="Python, React, PostgreSQL"' in again.text
    assert 'value="85.50"' in again.text
    assert '<option value="Europe/London" selected>' in again.text

    me = (await ada.get("/api/v1/me")).json()
    assert [s["slug"] for s in me["profile"]["skills"]] == ["python", "react", "postgresql"]
    assert me["profile"]["hourly_rate"] == {"amount": 8550, "currency": "USD"}
    assert me["profile"]["languages"] == ["English", "French"]

    public = await pages.browser().get(f"/users/{ada_id}")
    assert public.status_code == 200
    text = public.text
    for expected in ("Ada Lovelace", "Analytical engines, Python", "$85.50/hr", "London", "Europe/London",
                     "English, French", "Limited availability", "<strong>careful</strong>",
                     '<li class="chip">Python</li>', '<li class="chip">PostgreSQL</li>', ">Developer<",
                     ">Client<"):
        assert expected in text, expected
    assert "<script>alert(1)</script>" not in text
    assert 'href="https://github.com/ada" rel="nofollow noopener"' in text
    assert "Edit profile" not in text, "only the owner sees the edit button"
    own = await ada.get(f"/users/{ada_id}")
    assert 'href="/settings/profile">Edit profile' in own.text


async def test_a_whole_rate_reads_without_cents(pages: Pages) -> None:
    ada = pages.browser()
    ada_id = await sign_up(ada, "ada@example.com")
    assert (await ada.post("/settings/profile", {**PROFILE, "hourly_rate": "1,200", "currency": "EUR"})
            ).status_code == 303
    assert "\u20ac1,200/hr" in (await ada.get(f"/users/{ada_id}")).text
    assert (await ada.post("/settings/profile", {**PROFILE, "hourly_rate": "", "currency": "USD"})
            ).status_code == 303
    assert "/hr" not in (await ada.get(f"/users/{ada_id}")).text


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"hourly_rate": "ninety"}, "hourly_rate", "Enter an amount such as 45 or 62.50."),
    ({"hourly_rate": "100000.01"}, "hourly_rate", "Enter at most 100,000."),
    ({"skills": "Python, Telepathy"}, "skills", "Unknown skill: telepathy"),
    ({"github_url": "github.com/ada"}, "github_url", "Enter a full link starting with https://"),
    ({"timezone": "Mars/Olympus"}, "timezone", "Pick a time zone"),
    ({"headline": "x" * 121}, "headline", "Use at most 120 characters."),
    ({"display_name": "   "}, "display_name", "Enter your name as others should see it."),
    ({"roles": []}, "roles", "Choose client, developer or both."),
])
async def test_profile_mistakes_are_shown_next_to_the_field_with_the_input_kept(
    pages: Pages, changes: dict[str, Any], field: str, message: str,
) -> None:
    ada = pages.browser()
    await sign_up(ada, "ada@example.com")
    response = await ada.post("/settings/profile", {**PROFILE, **changes})
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert message in response.text
    assert 'value="Analytical engines, Python"' in response.text or field == "headline"
    assert "I write **careful** code." in response.text
    me = (await ada.get("/api/v1/me")).json()
    assert me["profile"]["headline"] == "", "nothing was saved"


async def test_avatar_upload_shows_on_the_profile_and_can_be_removed(pages: Pages) -> None:
    ada = pages.browser()
    ada_id = await sign_up(ada, "ada@example.com")
    uploaded = await ada.post("/settings/avatar", files={"avatar": ("me.png", png(), "image/png")})
    assert uploaded.status_code == 303, uploaded.text
    assert uploaded.headers["location"] == "/settings/profile?saved=avatar"
    public = (await pages.browser().get(f"/users/{ada_id}")).text
    found = re.search(r'<img class="avatar avatar-xl" src="(/media/avatars/[\w-]+\.webp)"', public)
    assert found, public
    image = await pages.browser().get(found.group(1))
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/webp"

    bad = await ada.post("/settings/avatar", files={"avatar": ("me.png", b"not an image", "image/png")})
    assert bad.status_code == 400
    assert 'id="avatar-error"' in bad.text
    assert "not a valid image" in bad.text
    nothing = await ada.post("/settings/avatar", files={"avatar": ("", b"", "application/octet-stream")})
    assert nothing.status_code == 400
    assert "Choose an image to upload." in nothing.text

    removed = await ada.post("/settings/avatar/delete")
    assert removed.status_code == 303
    public = (await pages.browser().get(f"/users/{ada_id}")).text
    assert "/media/avatars/" not in public
    assert 'avatar-initials" role="img" aria-label="Ada Lovelace">AL<' in public
    assert (await pages.browser().get(found.group(1))).status_code == 404, "the old file is deleted"


async def test_portfolio_items_with_images_appear_on_the_public_profile(pages: Pages) -> None:
    ada = pages.browser()
    ada_id = await sign_up(ada, "ada@example.com")
    added = await ada.post("/settings/portfolio", {
        "title": "Difference engine", "description": "Computes *tables*.", "link": "https://engine.example",
        "skills": "Python, js",
    }, files={"image": ("engine.png", png((20, 120, 200)), "image/png")})
    assert added.status_code == 303, added.text
    location = added.headers["location"]
    assert location.startswith("/settings/portfolio?saved=added#item-")
    item_id = location.rsplit("#item-", 1)[1]

    listing = await ada.get("/settings/portfolio?saved=added")
    assert "The item is added to your portfolio." in listing.text
    assert f'id="item-{item_id}"' in listing.text
    more = await ada.post(f"/settings/portfolio/{item_id}/images",
                          files={"image": ("second.png", png((10, 200, 10)), "image/png")})
    assert more.status_code == 303, more.text

    public = (await pages.browser().get(f"/users/{ada_id}")).text
    assert "Difference engine" in public
    assert "<em>tables</em>" in public
    assert '<li class="chip">JavaScript</li>' in public
    assert 'href="https://engine.example" rel="nofollow noopener"' in public
    images = re.findall(r'src="(/media/portfolio/[\w-]+\.webp)"', public)
    assert len(set(images)) == 2
    for url in set(images):
        assert (await pages.browser().get(url)).status_code == 200

    deleted = await ada.post(f"/settings/portfolio/{item_id}/delete")
    assert deleted.status_code == 303
    public = (await pages.browser().get(f"/users/{ada_id}")).text
    assert "Difference engine" not in public
    for url in set(images):
        assert (await pages.browser().get(url)).status_code == 404


async def test_portfolio_mistakes_keep_the_input(pages: Pages) -> None:
    ada = pages.browser()
    await sign_up(ada, "ada@example.com")
    bad_link = await ada.post("/settings/portfolio", {"title": "Engine", "description": "Gears",
                                                      "link": "javascript:alert(1)", "skills": ""})
    assert bad_link.status_code == 400
    assert 'id="link-error"' in bad_link.text
    assert 'value="Engine"' in bad_link.text
    no_title = await ada.post("/settings/portfolio", {"title": "", "description": "Gears"})
    assert no_title.status_code == 400
    assert 'id="title-error"' in no_title.text
    bad_image = await ada.post("/settings/portfolio", {"title": "Engine"},
                               files={"image": ("x.png", b"GIF89a nonsense", "image/png")})
    assert bad_image.status_code == 400
    assert 'id="image-error"' in bad_image.text
    assert (await ada.get("/api/v1/me")).status_code == 200
    assert "Your portfolio is empty" in (await ada.get("/settings/portfolio")).text


async def test_settings_only_ever_change_the_signed_in_person(pages: Pages) -> None:
    ada, bob = pages.browser(), pages.browser()
    ada_id = await sign_up(ada, "ada@example.com", name="Ada Lovelace")
    await sign_up(bob, "bob@example.com", name="Bob Builder")
    added = await ada.post("/settings/portfolio", {"title": "Ada's engine"})
    item_id = added.headers["location"].rsplit("#item-", 1)[1]

    assert (await bob.post(f"/settings/portfolio/{item_id}/delete")).status_code == 404
    assert (await bob.post(f"/settings/portfolio/{item_id}/images",
                           files={"image": ("x.png", png(), "image/png")})).status_code == 404
    assert (await bob.post(f"/settings/portfolio/{uuid.uuid4()}/delete")).status_code == 404
    hijack = await bob.post("/settings/profile", {**PROFILE, "display_name": "Bob the Hijacker",
                                                  "user_id": ada_id, "id": ada_id})
    assert hijack.status_code == 303
    ada_public = (await pages.browser().get(f"/users/{ada_id}")).text
    assert "Ada Lovelace" in ada_public
    assert "Ada&#39;s engine" in ada_public
    assert "Bob the Hijacker" not in ada_public
    bob_settings = await bob.get("/settings/portfolio")
    assert "Ada&#39;s engine" not in bob_settings.text
    assert "Bob the Hijacker" in (await bob.get("/settings/profile")).text


async def test_unknown_and_deleted_people_have_no_profile(pages: Pages) -> None:
    assert (await pages.browser().get(f"/users/{uuid.uuid4()}")).status_code == 404
    ada = pages.browser()
    ada_id = await sign_up(ada, "ada@example.com")
    unconfirmed = await ada.post("/settings/account", {"action": "delete", "current_password": PASSWORD})
    assert unconfirmed.status_code == 400
    assert "Tick the box" in unconfirmed.text
    wrong = await ada.post("/settings/account", {"action": "delete", "current_password": "Nope-Nope-123",
                                                 "confirm": "yes"})
    assert wrong.status_code == 400
    assert "That is not your current password." in wrong.text
    deleted = await ada.post("/settings/account", {"action": "delete", "current_password": PASSWORD,
                                                   "confirm": "yes"})
    assert deleted.status_code == 303
    assert ada.session_cookie is None
    assert (await pages.browser().get(f"/users/{ada_id}")).status_code == 404
    assert (await log_in(pages.browser(), "ada@example.com")).status_code == 400


# ---------------------------------------------------------------------------
# Passwords and e-mail address
# ---------------------------------------------------------------------------


async def test_forgotten_password_reset_by_the_mailed_link(pages: Pages) -> None:
    ada = pages.browser()
    await sign_up(ada, "ada@example.com")
    other = pages.browser()
    form = await other.get("/forgot-password")
    assert form.status_code == 200
    unknown = await other.post("/forgot-password", {"email": "nobody@example.com"})
    known = await other.post("/forgot-password", {"email": "ADA@example.com"})
    assert unknown.status_code == known.status_code == 200
    assert "If an account uses this address" in known.text
    assert unknown.text.replace("nobody@example.com", "ADA@example.com").count("If an account") == 1
    link = await pages.link_to("ada@example.com", "/reset-password")

    page = await other.get(link)
    assert page.status_code == 200
    token = link.split("token=", 1)[1]
    assert f'name="token" value="{token}"' in page.text
    weak = await other.post("/reset-password", {"token": token, "new_password": "password"})
    assert weak.status_code == 400
    assert 'id="new_password-error"' in weak.text
    done = await other.post("/reset-password", {"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 303
    assert done.headers["location"] == "/login?reset=1"
    assert "Your password is changed." in (await other.get("/login?reset=1")).text

    assert (await ada.get("/settings/profile", follow=False)).status_code == 303, "sessions end"
    assert (await log_in(other, "ada@example.com", PASSWORD)).status_code == 400
    assert (await log_in(other, "ada@example.com", NEW_PASSWORD)).status_code == 303
    reused = await pages.browser().post("/reset-password", {"token": token, "new_password": NEW_PASSWORD})
    assert reused.status_code == 400
    assert "expired or was already used" in reused.text


async def test_change_password_from_the_account_settings(pages: Pages) -> None:
    ada = pages.browser()
    await sign_up(ada, "ada@example.com")
    laptop = pages.browser()
    assert (await log_in(laptop, "ada@example.com")).status_code == 303
    page = await ada.get("/settings/account")
    assert 'action="/settings/password"' in page.text
    assert 'autocomplete="current-password"' in page.text
    wrong = await ada.post("/settings/password", {"current_password": "Nope-Nope-123",
                                                  "new_password": NEW_PASSWORD})
    assert wrong.status_code == 400
    assert 'id="pw-current-password-error"' in wrong.text
    changed = await ada.post("/settings/password",
                             {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 303
    assert changed.headers["location"] == "/settings/account?saved=password"
    assert "Your password is changed." in (await ada.get(changed.headers["location"])).text
    assert (await laptop.get("/settings/account", follow=False)).status_code == 303, "other sessions end"
    assert (await log_in(pages.browser(), "ada@example.com", NEW_PASSWORD)).status_code == 303


async def test_change_email_address_confirmed_by_the_mailed_link(pages: Pages) -> None:
    ada = pages.browser()
    await sign_up(ada, "ada@example.com")
    await sign_up(pages.browser(), "taken@example.com", name="Someone")
    wrong = await ada.post("/settings/account", {"action": "email", "new_email": "ada@new.example",
                                                 "current_password": "Nope-Nope-123"})
    assert wrong.status_code == 400
    assert 'id="email-current-password-error"' in wrong.text
    assert 'value="ada@new.example"' in wrong.text
    taken = await ada.post("/settings/account", {"action": "email", "new_email": "taken@example.com",
                                                 "current_password": PASSWORD})
    assert taken.status_code == 409
    assert 'id="new_email-error"' in taken.text
    sent = await ada.post("/settings/account", {"action": "email", "new_email": "ada@new.example",
                                                "current_password": PASSWORD})
    assert sent.status_code == 303
    assert sent.headers["location"] == "/settings/account?sent=email"
    confirmed = await ada.get(await pages.link_to("ada@new.example", "/confirm-email"))
    assert confirmed.status_code == 200
    assert "ada@new.example" in confirmed.text
    assert (await log_in(pages.browser(), "ada@new.example")).status_code == 303


class ExampleSSO:
    """A sign-in provider plugin; only its buttons are looked at here."""

    @hookimpl
    def register_auth_providers(self, site: Any) -> list[Any]:
        return [SimpleNamespace(id="example", label="Example SSO")]


async def test_provider_buttons_keep_next_and_the_chosen_roles(open_pages: Any) -> None:
    pages = await open_pages(extra=[("example_sso", ExampleSSO())])
    browser = pages.browser()
    login = (await browser.get("/login?next=/settings/account")).text
    assert ('href="/auth/example/login?next=%2Fsettings%2Faccount&amp;roles=client"' in login)
    assert "Continue with Example SSO" in login
    signup = (await browser.get("/signup?role=developer")).text
    assert 'href="/auth/example/login?next=%2Fsettings%2Fprofile%3Fwelcome%3D1&amp;roles=developer"' in signup
    assert 'value="developer" checked' in signup
    assert 'value="client" checked' not in signup


async def test_the_provider_failure_page_renders(pages: Pages) -> None:
    page = await pages.site.templates.render("accounts/auth_failed.html", provider_label="GitHub",
                                             message="Your e-mail address at this provider is not verified.")
    assert "Signing in with GitHub did not work" in page
    assert "is not verified" in page


async def test_themed_404_knows_who_is_signed_in_and_can_log_out(pages: Pages) -> None:
    lost = pages.browser()
    await sign_up(lost, "lost@example.com", name="Lost Person")
    missing = await lost.get("/no/such/page")
    assert missing.status_code == 404
    assert "Lost Person" in missing.text
    token = CSRF.search(missing.text)
    assert token, "the header's log-out form carries a CSRF token"
    out = await lost.post("/logout", {"csrf_token": token.group(1)}, csrf=False)
    assert out.status_code == 303
    assert not lost.session_cookie
