"""The default theme in real Chromium: home page, navigation, error page, phone, dark mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mercato import create_app, hookimpl
from mercato.core.navigation import NavItem
from mercato.core.plugins import build_plugin_manager
from mercato.core.site import Site
from tests.conftest import _delete_streams
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


class Navigation:
    @hookimpl
    def register_nav_items(self, site: Any) -> list[NavItem]:
        return [NavItem(key="home", label="Home", href="/", order=1),
                NavItem(key="projects", label="Projects", href="/projects", order=10),
                NavItem(key="services", label="Services", href="/services", order=20)]


@pytest.fixture
async def live(migrated_settings: Any) -> Any:
    pm = build_plugin_manager(migrated_settings, extra=[("navigation", Navigation())])
    async with LiveServer(create_app(site=Site(migrated_settings, pm=pm))) as server:
        yield server
    await _delete_streams(migrated_settings.events.nats_url, {migrated_settings.events.stream})


async def open_page(
    browser: Any, url: str, viewport: dict[str, int], **options: Any
) -> tuple[Any, list[str]]:
    context = await browser.new_context(viewport=viewport, **options)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    return page, errors


async def test_home_page_on_desktop(browser: Any, live: Any, screenshots: Path) -> None:
    page, errors = await open_page(browser, live.url + "/", DESKTOP)
    await page.screenshot(path=screenshots / "home-desktop.png", full_page=True)
    assert (await page.title()).startswith("mercato")
    assert await page.locator("h1").first.is_visible()
    assert await page.get_by_role("link", name="Post a project").is_visible()
    nav = page.get_by_role("navigation", name="Primary").first
    assert await nav.get_by_role("link", name="Home").get_attribute("aria-current") == "page"
    stylesheet_applied = await page.evaluate(
        "getComputedStyle(document.body).fontFamily.length > 0 && "
        "getComputedStyle(document.querySelector('.site-header')).display !== 'inline'"
    )
    assert stylesheet_applied
    assert errors == []


async def test_keyboard_reaches_skip_link_first(browser: Any, live: Any, screenshots: Path) -> None:
    page, _ = await open_page(browser, live.url + "/", DESKTOP)
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to content"
    await page.screenshot(path=screenshots / "skip-link-focus.png")


async def test_phone_menu_opens_without_javascript(browser: Any, live: Any, screenshots: Path) -> None:
    page, errors = await open_page(browser, live.url + "/", PHONE, java_script_enabled=False)
    await page.screenshot(path=screenshots / "home-phone.png", full_page=True)
    mobile_nav = page.locator(".site-nav-mobile")
    assert not await mobile_nav.is_visible()
    await page.get_by_text("Menu").click()
    assert await mobile_nav.get_by_role("link", name="Projects").is_visible()
    await page.screenshot(path=screenshots / "home-phone-menu.png")
    no_horizontal_scroll = await page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth"
    )
    assert no_horizontal_scroll
    assert errors == []


async def test_dark_mode_follows_the_system(browser: Any, live: Any, screenshots: Path) -> None:
    light, _ = await open_page(browser, live.url + "/", DESKTOP, color_scheme="light")
    dark, _ = await open_page(browser, live.url + "/", DESKTOP, color_scheme="dark")
    await dark.screenshot(path=screenshots / "home-dark.png", full_page=True)
    script = "getComputedStyle(document.body).backgroundColor"
    assert await light.evaluate(script) != await dark.evaluate(script)


async def test_missing_page_shows_the_themed_404(browser: Any, live: Any, screenshots: Path) -> None:
    page, _ = await open_page(browser, live.url + "/no-such-page", DESKTOP)
    await page.screenshot(path=screenshots / "not-found.png", full_page=True)
    assert "404" in await page.locator("main").inner_text()
    await page.get_by_role("link", name="home").first.click()
    assert page.url == live.url + "/"
