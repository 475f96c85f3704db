"""Editing a service in the theme and the developer's "My services" on the dashboard, driven
like a browser without JavaScript: the owner's form comes pre-filled and saves through the
same update as the API (so its checks and ``validate_listing`` plugins answer inline), nobody
else may open it, and the dashboard lists each service with what its status allows."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from mercato import hookimpl
from mercato.core.listings import schemas
from mercato.core.listings.models import Listing
from mercato.core.listings.services import ListingService
from tests.integration.test_account_pages import Pages
from tests.integration.test_project_pages import open_site, pages, person, text_of
from tests.integration.test_service_pages import offer, service_form

__all__ = ["open_site", "pages"]

T = TypeVar("T")


async def on_app_loop(pages: Pages, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` on the app's event loop (the site's engine lives there; on PostgreSQL its
    connections cannot be used from the test's loop)."""
    return await asyncio.to_thread(pages.client.blocking_portal.call, fn)


def service_row(dashboard: httpx.Response, service_id: str) -> str:
    """The dashboard's row of one service (its HTML)."""
    found = re.search(rf'<li class="dash-row" id="service-{service_id}".*?</li>', dashboard.text, flags=re.S)
    assert found, dashboard.text
    return found.group(0)


class NoOffPlatformPayment:
    """A moderation plugin: no PayPal links in a listing's texts."""

    @hookimpl
    def validate_listing(self, listing: dict[str, Any]) -> str | None:
        if "paypal.me" in f"{listing['title']} {listing['description']}".lower():
            return "Payments go through the marketplace: remove links to off-platform payment."
        return None


# ---------------------------------------------------------------------------
# Editing
# ---------------------------------------------------------------------------


async def test_the_owner_edits_a_service_and_sees_the_change(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)

    page = await developer.get(f"/services/{service_id}")
    assert f'href="/services/{service_id}/edit"' in page.text
    form = await developer.get(f"/services/{service_id}/edit")
    assert form.status_code == 200
    assert f'action="/services/{service_id}/edit"' in form.text
    assert 'value="Stripe checkout for your Django shop"' in form.text
    assert 'value="Checkout and refunds"' in form.text
    assert re.search(r'name="standard_price"[^>]*value="300"', form.text)
    assert re.search(r'name="fast_price"[^>]*value="50"', form.text)
    assert "A staging server is enough." in form.text
    assert 'value="Which URL is your shop at?"' in form.text
    assert "Python, Django" in form.text

    saved = await developer.post(
        f"/services/{service_id}/edit",
        service_form(title="Stripe checkout and refunds for Django", standard_price="350"),
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/services/{service_id}?done=saved"
    seen = text_of(await developer.get(saved.headers["location"]))
    assert "Your changes are saved." in seen
    assert "Stripe checkout and refunds for Django" in seen
    assert "$350" in seen
    assert "Do you need server access?" in seen


async def test_saving_the_form_keeps_what_it_does_not_show(pages: Pages) -> None:
    """Add-ons other than extra-fast delivery and package descriptions come from the API; the
    form must not drop them (nor change the extra-fast add-on's id, which orders point at)."""
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)
    listings = ListingService(pages.site)

    async def add_what_the_form_lacks() -> uuid.UUID:
        """A custom add-on and a package description, as the API can set them."""
        async with pages.site.db.transaction() as session:
            listing = await session.get(Listing, uuid.UUID(service_id))
            assert listing is not None
            fast = (await listings.addons_of(session, [listing.id]))[listing.id][0]
            basic = (await listings.packages_of(session, [listing.id]))[listing.id][0]
            await listings.update(
                session,
                listing,
                schemas.ServiceUpdate(
                    addons=[
                        schemas.AddonIn(
                            id=fast.id,
                            kind="extra_fast",
                            title=fast.title,
                            price=fast.price,
                            delivery_days_saved=2,
                        ),
                        schemas.AddonIn(kind="custom", title="Deploy to your server", price=8000),
                    ],
                    packages=[
                        schemas.PackageIn(
                            tier="basic",
                            name=basic.name,
                            description="Just the checkout page.",
                            price=basic.price,
                            delivery_days=basic.delivery_days,
                            features=list(basic.features),
                        )
                    ],
                ),
            )
            return fast.id

    fast_id = await on_app_loop(pages, add_what_the_form_lacks)

    saved = await developer.post(f"/services/{service_id}/edit", service_form(fast_price="60"))
    assert saved.status_code == 303, saved.text

    async def saved_service() -> schemas.ServiceOut:
        async with pages.site.db.reading() as session:
            listing = await listings.visible(session, uuid.UUID(service_id), None)
            return await listings.out(session, listing, None)

    out = await on_app_loop(pages, saved_service)
    assert [(a.kind, a.price) for a in out.addons] == [("extra_fast", 6000), ("custom", 8000)]
    assert out.addons[0].id == fast_id
    assert [(p.tier, p.description) for p in out.packages] == [
        ("basic", "Just the checkout page."),
        ("standard", ""),
    ]


async def test_edit_mistakes_show_next_to_their_fields_with_the_input_kept(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)

    wrong = await developer.post(
        f"/services/{service_id}/edit", service_form(title="Hi", standard_price="abc")
    )
    assert wrong.status_code == 400
    seen = text_of(wrong)
    assert "at least 5 characters" in seen
    assert "Enter an amount such as 45 or 62.50." in seen
    assert 'value="abc"' in wrong.text
    assert 'id="title-error"' in wrong.text
    assert f'action="/services/{service_id}/edit"' in wrong.text

    # The service's own rule: a published service keeps at least one package.
    unpriced = await developer.post(
        f"/services/{service_id}/edit", service_form(basic_price="", standard_price="", fast_price="")
    )
    assert unpriced.status_code == 400
    assert 'id="packages-error"' in unpriced.text
    assert "A published service offers one to three packages." in text_of(unpriced)
    page = text_of(await developer.get(f"/services/{service_id}"))
    assert "$150" in page


async def test_a_validate_listing_rejection_shows_on_the_form(pages: Pages) -> None:
    pages.site.plugins.pm.register(NoOffPlatformPayment(), name="no_paypal")
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)

    description = "Pay me at paypal.me/grace and I add Stripe checkout to your Django shop."
    refused = await developer.post(f"/services/{service_id}/edit", service_form(description=description))
    assert refused.status_code == 400
    assert 'id="content-error"' in refused.text
    assert "remove links to off-platform payment" in text_of(refused)
    assert "paypal.me/grace" in refused.text
    page = text_of(await developer.get(f"/services/{service_id}"))
    assert "paypal.me" not in page


async def test_only_the_owner_may_open_or_save_the_edit_form(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    rival, _ = await person(pages, "linus@example.com", "Linus Torvalds", "developer")
    client, _ = await person(pages, "ada@example.com", "Ada Lovelace", "client")
    published = await offer(developer)
    draft = await offer(developer, action="draft")

    for stranger in (rival, client):
        for service_id in (published, draft):
            opened = await stranger.get(f"/services/{service_id}/edit")
            assert opened.status_code == 404
            assert "Edit service" not in opened.text
            saved = await stranger.post(
                f"/services/{service_id}/edit", service_form(title="Taken over by me")
            )
            assert saved.status_code == 404
    assert "Taken over by me" not in text_of(await client.get(f"/services/{published}"))
    assert f'href="/services/{published}/edit"' not in (await client.get(f"/services/{published}")).text

    anonymous = pages.browser()
    opened = await anonymous.get(f"/services/{published}/edit", follow=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/login?next=%2Fservices%2F{published}%2Fedit"
    saved = await anonymous.post(f"/services/{published}/edit", service_form())
    assert saved.status_code == 303
    assert saved.headers["location"].startswith("/login?next=")


async def test_an_archived_service_cannot_be_edited(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)
    assert (await developer.post(f"/services/{service_id}/archive")).status_code == 303

    opened = await developer.get(f"/services/{service_id}/edit", follow=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/services/{service_id}"
    refused = await developer.post(f"/services/{service_id}/edit", service_form(title="Back from the dead"))
    assert refused.status_code == 409
    assert "it can no longer be edited" in text_of(refused)


# ---------------------------------------------------------------------------
# My services on the dashboard
# ---------------------------------------------------------------------------


async def test_the_dashboard_lists_my_services_with_what_each_status_allows(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    published = await offer(developer)
    draft = await offer(developer, title="Django upgrade to the latest release", action="draft")
    paused = await offer(developer, title="Celery queue tuning for busy shops")
    archived = await offer(developer, title="An old offer nobody wanted")
    assert (await developer.post(f"/services/{paused}/pause")).status_code == 303
    assert (await developer.post(f"/services/{archived}/archive")).status_code == 303

    dashboard = await developer.get("/dashboard")
    assert dashboard.status_code == 200
    assert "My services" in text_of(dashboard)
    assert "You do not offer a service yet" not in text_of(dashboard)

    row = service_row(dashboard, published)
    assert "Published" in row
    assert "From $150" in text_of(httpx.Response(200, text=row))
    assert "0 orders" in row
    assert f'href="/services/{published}/edit"' in row
    assert f'action="/services/{published}/pause"' in row
    assert f'action="/services/{published}/archive"' in row
    assert "/publish" not in row
    assert "/resume" not in row

    row = service_row(dashboard, draft)
    assert "Draft" in row
    assert f'action="/services/{draft}/publish"' in row
    assert f'action="/services/{draft}/archive"' in row
    assert "/pause" not in row
    assert "/resume" not in row

    row = service_row(dashboard, paused)
    assert "Paused" in row
    assert f'action="/services/{paused}/resume"' in row
    assert "/pause" not in row
    assert "/publish" not in row

    row = service_row(dashboard, archived)
    assert "An old offer nobody wanted" in row
    assert "/edit" not in row
    assert "/archive" not in row
    archive_list = re.search(
        r'<details class="dash-past dash-archived-services">.*?</details>', dashboard.text, flags=re.S
    )
    assert archive_list
    assert f'id="service-{archived}"' in archive_list.group(0)
    assert "Archived services 1" in text_of(dashboard)

    resumed = await developer.post(f"/services/{paused}/resume")
    assert resumed.status_code == 303
    assert f'action="/services/{paused}/pause"' in service_row(await developer.get("/dashboard"), paused)


async def test_a_developer_without_services_is_invited_to_offer_one(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    dashboard = await developer.get("/dashboard")
    assert dashboard.status_code == 200
    seen = text_of(dashboard)
    assert "My services" in seen
    assert "You do not offer a service yet" in seen
    assert re.search(r'<a class="btn btn-primary" href="/services/new">Offer a service</a>', dashboard.text)

    client, _ = await person(pages, "ada@example.com", "Ada Lovelace", "client")
    assert "My services" not in text_of(await client.get("/dashboard"))
