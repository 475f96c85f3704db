"""Accounts in real Chromium: a developer signs up, verifies the address through the
development mailbox, logs out and in, fills the profile (skills picker), uploads a photo and
a portfolio item; a client in another browser then sees all of it on the public profile.
Screenshots of every step land in test-results/screenshots/<test name>/.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from mercato import create_app
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database
from tests.e2e.conftest import LiveServer, free_port

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "Tangerine-Orbit-4417"


class SiteServer(LiveServer):
    """A live server on a port chosen beforehand, so ``[site] base_url`` (and the links the
    site mails) point at it."""

    def __init__(self, app: Any, port: int) -> None:
        super().__init__(app)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server.config.port = port


@pytest.fixture
async def live(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[SiteServer]:
    port = free_port()
    settings = make_settings(site={"base_url": f"http://127.0.0.1:{port}", "name": "Mercato Dev"},
                             mail={"dev_mailbox": True})
    settings = _with_database(settings, await databases.create_migrated(settings))
    async with SiteServer(create_app(site=Site(settings)), port) as server:
        yield server
    await _delete_streams(settings.events.nats_url, {settings.events.stream})


def picture(path: Path, colors: tuple[str, str], size: tuple[int, int], label: str) -> Path:
    """A PNG with a diagonal gradient-ish split and a caption, so screenshots show something."""
    image = Image.new("RGB", size, colors[0])
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, size[1]), (size[0], 0), (size[0], size[1])], fill=colors[1])
    draw.rectangle([size[0] // 10, size[1] // 10, size[0] // 10 + 8 * len(label) + 16, size[1] // 10 + 28],
                   fill="white")
    draw.text((size[0] // 10 + 8, size[1] // 10 + 8), label, fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


class Tab:
    """A page of one browser context that records console errors."""

    def __init__(self, page: Any, folder: Path, prefix: str) -> None:
        self.page = page
        self.folder = folder
        self.prefix = prefix
        self.errors: list[str] = []
        self.step = 0
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    async def shot(self, name: str, *, full_page: bool = True) -> None:
        self.step += 1
        if full_page:  # from the top, or the sticky header lands mid-picture
            await self.page.evaluate("window.scrollTo(0, 0)")
        await self.page.screenshot(path=self.folder / f"{self.prefix}-{self.step:02d}-{name}.png",
                                   full_page=full_page)


async def new_tab(browser: Any, folder: Path, prefix: str, viewport: dict[str, int], **options: Any) -> Tab:
    context = await browser.new_context(viewport=viewport, **options)
    return Tab(await context.new_page(), folder, prefix)


async def sign_up(tab: Tab, live: SiteServer, *, name: str, email: str, developer: bool) -> None:
    page = tab.page
    await page.goto(live.url + "/signup")
    hire = page.get_by_role("checkbox", name=re.compile("Hire"))
    work = page.get_by_role("checkbox", name=re.compile("Work"))
    if developer:
        await work.check()
        await hire.uncheck()
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await tab.shot("signup-form")
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(re.compile(r"/settings/profile\?welcome=1$"))


async def test_developer_profile_from_sign_up_to_public_page(
    browser: Any, live: SiteServer, screenshots: Path, tmp_path: Path,
) -> None:
    dev = await new_tab(browser, screenshots, "dev", DESKTOP)
    page = dev.page

    # -- sign up as a developer; the verification banner shows ---------------------------
    await sign_up(dev, live, name="Ada Lovelace", email="ada@example.com", developer=True)
    assert await page.get_by_text("Welcome! Your account is ready.").is_visible()
    banner = page.locator(".verify-banner")
    assert await banner.is_visible()
    await dev.shot("welcome")

    # -- verify through the development mailbox ---------------------------------------------
    await page.goto(live.url + "/dev/mailbox")
    await dev.shot("mailbox")
    await page.get_by_role("link", name=re.compile("Confirm your e-mail address")).click()
    await page.frame_locator("iframe").get_by_role("link", name="Confirm e-mail address").click()
    await page.wait_for_url(re.compile(r"/verify-email\?token="))
    assert await page.get_by_role("heading", name="Your e-mail address is verified").is_visible()
    assert await page.locator(".verify-banner").count() == 0
    await dev.shot("verified")

    # -- log out through the account menu, then log in again --------------------------------
    await page.locator(".account-menu summary").click()
    assert await page.get_by_role("link", name="Settings").is_visible()
    await dev.shot("account-menu", full_page=False)
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(live.url + "/")
    assert await page.get_by_role("link", name="Log in").is_visible()
    await page.goto(live.url + "/settings/profile")
    await page.wait_for_url(re.compile(r"/login\?next="))
    await page.get_by_label("E-mail address").fill("ada@example.com")
    await page.get_by_label("Password").fill("wrong-password-1")
    await page.get_by_role("button", name="Log in").click()
    assert await page.get_by_role("alert").filter(has_text="e-mail address or password is wrong").is_visible()
    await dev.shot("login-failed")
    assert dev.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    dev.errors.clear()  # that 400 was the point
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(live.url + "/settings/profile")

    # -- the profile, skills typed into the picker ------------------------------------------
    await page.get_by_label("Headline").fill("Backend engineer: Python, payments, PostgreSQL")
    await page.get_by_label("About").fill(
        "I build **reliable** payment systems.\n\n- 10 years of Python\n- Loves boring technology")
    skills = page.locator("#skills")
    for typed, key in (("python", "Enter"), ("react", ","), ("postgres", "Enter")):
        await skills.fill(typed)
        await skills.press(key)
    chips = page.locator(".skill-chips .chip")
    assert await chips.locator(".chip-label").all_inner_texts() == ["Python", "React", "PostgreSQL"]
    await chips.filter(has_text="React").click()  # a click removes a chip
    await skills.fill("Django")
    await skills.press("Enter")
    await page.get_by_label("Hourly rate").fill("95")
    await page.get_by_label("Availability").select_option("available")
    await page.get_by_label("Location").fill("Lisbon, Portugal")
    await page.get_by_label("Time zone").select_option("Europe/Lisbon")
    await page.get_by_label("Languages").fill("English, Portuguese")
    await page.get_by_label("GitHub").fill("https://github.com/ada")
    await dev.shot("profile-form")
    await page.get_by_role("button", name="Save profile").click()
    await page.wait_for_url(re.compile(r"/settings/profile\?saved=1$"))
    assert await page.get_by_text("Your profile is saved.").is_visible()
    saved = await page.locator(".skill-chips .chip-label").all_inner_texts()
    assert saved == ["Python", "PostgreSQL", "Django"]

    # -- a photo ---------------------------------------------------------------------------------
    avatar = picture(tmp_path / "avatar.png", ("#4f46e5", "#22d3ee"), (400, 400), "Ada")
    await page.get_by_label("Upload a new photo").set_input_files(avatar)
    await page.get_by_role("button", name="Upload photo").click()
    await page.wait_for_url(re.compile(r"saved=avatar$"))
    photo = page.locator("img.avatar-xl")
    assert await photo.evaluate("img => img.complete && img.naturalWidth > 0")
    await dev.shot("profile-saved")

    # -- a portfolio item with an image ----------------------------------------------------------
    await page.get_by_role("navigation", name="Settings").get_by_role("link", name="Portfolio").click()
    await page.wait_for_url(live.url + "/settings/portfolio")
    await page.get_by_label("Title").fill("Payments platform for a ferry company")
    await page.get_by_label("Description").fill("Rebuilt **ticketing and refunds**; 2M bookings a year.")
    await page.get_by_label("Link", exact=False).first.fill("https://ferries.example")
    item_skills = page.locator("#item-skills")
    await item_skills.fill("Python")
    await item_skills.press("Enter")
    await item_skills.fill("stripe")
    await item_skills.press("Enter")
    shot = picture(tmp_path / "ferry.png", ("#0f766e", "#fbbf24"), (1200, 750), "Ferry booking")
    await page.locator("#image").set_input_files(shot)
    await dev.shot("portfolio-form")
    await page.get_by_role("button", name="Add to portfolio").click()
    await page.wait_for_url(re.compile(r"/settings/portfolio\?saved=added#item-"))
    assert await page.get_by_role("heading", name="Payments platform for a ferry company").is_visible()
    await dev.shot("portfolio-saved")
    await page.locator(".account-menu summary").click()
    menu = page.locator(".account-menu")
    profile_href = await menu.get_by_role("link", name="Profile").get_attribute("href")
    assert profile_href
    assert re.fullmatch(r"/users/[0-9a-f-]{36}", profile_href)
    assert dev.errors == []

    # -- a client, in another browser, views the developer's public profile ------------------
    client = await new_tab(browser, screenshots, "client", DESKTOP)
    await sign_up(client, live, name="Grace Hopper", email="grace@example.com", developer=False)
    await client.page.goto(live.url + profile_href)
    public = client.page
    assert await public.get_by_role("heading", name="Ada Lovelace").is_visible()
    for skill in ("Python", "PostgreSQL", "Django"):
        assert await public.locator(".profile-main .chip", has_text=skill).first.is_visible()
    assert await public.get_by_text("$95/hr").is_visible()
    title = public.get_by_role("heading", name="Payments platform for a ferry company")
    assert await title.get_by_role("link").get_attribute("href") == "https://ferries.example"
    assert await public.get_by_text("Edit profile").count() == 0
    cover = public.locator(".portfolio-cover img")
    await cover.scroll_into_view_if_needed()
    assert await cover.evaluate("img => img.complete && img.naturalWidth > 0")
    assert await public.locator(".profile-hero img.avatar").evaluate("img => img.naturalWidth > 0")
    await client.shot("public-profile")
    await public.locator(".portfolio-cover").click()
    lightbox = public.locator("dialog.lightbox")
    assert await lightbox.evaluate("dialog => dialog.open")
    assert await lightbox.locator("img").evaluate("img => img.naturalWidth") == 1200
    await client.shot("lightbox", full_page=False)
    await public.keyboard.press("Escape")
    assert not await lightbox.evaluate("dialog => dialog.open")
    assert client.errors == []

    # -- the same pages on a phone and in dark mode ----------------------------------------------
    phone = await new_tab(browser, screenshots, "phone", PHONE, color_scheme="dark")
    await phone.page.goto(live.url + profile_href)
    await phone.shot("public-profile")
    await phone.page.goto(live.url + "/signup")
    await phone.shot("signup")
    for path in (profile_href, "/signup", "/login"):
        await phone.page.goto(live.url + path)
        assert await phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    assert phone.errors == []


async def test_settings_pages_fit_a_phone(browser: Any, live: SiteServer, screenshots: Path) -> None:
    tab = await new_tab(browser, screenshots, "phone", PHONE)
    await sign_up(tab, live, name="Margaret Hamilton-Fairweather", email="margaret@example.com",
                  developer=True)
    pages = (("/settings/profile", "settings-profile"), ("/settings/portfolio", "settings-portfolio"),
             ("/settings/account", "settings-account"))
    for path, name in pages:
        await tab.page.goto(live.url + path)
        await tab.shot(name)
        fits = await tab.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, path
    await tab.page.goto(live.url + "/settings/profile")
    await tab.page.get_by_label("Hourly rate").fill("lots")
    await tab.page.get_by_label("GitHub").fill("github.com/margaret")
    await tab.page.get_by_role("button", name="Save profile").click()
    error = tab.page.locator("#hourly_rate-error")
    assert await error.inner_text() == "Enter an amount such as 45 or 62.50."
    assert await tab.page.get_by_label("Hourly rate").get_attribute("aria-invalid") == "true"
    assert await tab.page.get_by_label("GitHub").input_value() == "github.com/margaret", "input kept"
    await error.scroll_into_view_if_needed()
    await tab.shot("profile-error", full_page=False)
    tab.errors.clear()  # the 400 answer is logged as a failed resource
    await tab.page.locator(".account-menu summary").click()
    await tab.shot("account-menu", full_page=False)
    assert await tab.page.get_by_role("button", name="Log out").is_visible()
    desktop = await new_tab(browser, screenshots, "desktop", DESKTOP, color_scheme="dark")
    await desktop.page.goto(live.url + "/login")
    await desktop.shot("login-dark")
    await desktop.page.goto(live.url + "/forgot-password")
    await desktop.shot("forgot-password-dark")
    assert tab.errors == []
    assert desktop.errors == []
