"""The theme's service pages, driven like a browser without JavaScript: a developer offers and
publishes a service through the form, a client finds it and orders a package with an add-on,
and the contract page shows the order; plus who may see drafts and what the forms refuse."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.test_account_pages import Browser, Pages
from tests.integration.test_project_pages import listed, open_site, pages, person, text_of

__all__ = ["open_site", "pages"]

SERVICE_URL = re.compile(r"^/services/([0-9a-f-]{36})\?done=(\w+)$")
ORDER_URL = re.compile(r"^/contracts/([0-9a-f-]{36})\?ordered=1$")


def service_form(**changes: Any) -> dict[str, Any]:
    """A valid offer-a-service form; ``changes`` replace fields."""
    form: dict[str, Any] = {
        "title": "Stripe checkout for your Django shop",
        "description": "I add **Stripe checkout**, refunds and webhooks to an existing Django shop.",
        "category": "web-backend",
        "skills": "Python, Django",
        "currency": "USD",
        "basic_name": "Checkout only",
        "basic_price": "150",
        "basic_days": "5",
        "basic_revisions": "1",
        "basic_features": "Checkout page\nSource code",
        "standard_name": "Checkout and refunds",
        "standard_price": "300",
        "standard_days": "7",
        "standard_revisions": "-1",
        "standard_features": "Checkout page\nRefunds\nSource code",
        "premium_name": "",
        "premium_price": "",
        "premium_days": "",
        "premium_revisions": "-1",
        "premium_features": "",
        "fast_price": "50",
        "fast_days": "2",
        "faq_question": ["Do you need server access?", "", ""],
        "faq_answer": ["A staging server is enough.", "", ""],
        "requirements": ["Which URL is your shop at?", "", ""],
        "action": "publish",
    }
    form.update(changes)
    return form


async def offer(developer: Browser, **changes: Any) -> str:
    response = await developer.post("/services/new", service_form(**changes))
    assert response.status_code == 303, response.text
    found = SERVICE_URL.match(response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def test_a_developer_publishes_a_service_and_a_client_orders_it(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    client, _ = await person(pages, "ada@example.com", "Ada Lovelace", "client")
    form = await developer.get("/services/new")
    assert form.status_code == 200
    assert 'name="standard_price"' in form.text

    service_id = await offer(developer)
    own = await developer.get(f"/services/{service_id}?done=published")
    assert own.status_code == 200
    assert "Your service is published" in own.text
    assert f'action="/services/{service_id}/pause"' in own.text
    assert f'action="/services/{service_id}/order"' not in own.text

    listing = await listed(client, "/services", "Stripe checkout for your Django shop")
    assert listing.status_code == 200
    seen = text_of(listing)
    assert "1 service" in seen
    assert "Stripe checkout for your Django shop" in seen
    assert "Grace Hopper" in seen
    assert "From $150" in seen
    assert "Delivery in 5 days" in seen
    filtered = text_of(await client.get("/services?max_price=100"))
    assert "Stripe checkout for your Django shop" not in filtered
    assert "No services match these filters" in filtered

    page = await client.get(f"/services/{service_id}")
    assert page.status_code == 200
    seen = text_of(page)
    assert "Compare packages" in seen
    assert "$300" in seen
    assert "Unlimited" in seen
    assert "Refunds" in seen
    assert "A staging server is enough." in seen
    assert f'href="/users/{_developer_id(page.text)}"' in page.text
    addon = re.search(r'name="addons" value="([0-9a-f-]{36})"', page.text)
    assert addon, page.text

    ordered = await client.post(
        f"/services/{service_id}/order",
        {"package": "standard", "addons": [addon.group(1)], "answers": ["https://beans.example"]},
    )
    assert ordered.status_code == 303, ordered.text
    found = ORDER_URL.match(ordered.headers["location"])
    assert found, ordered.headers["location"]
    contract = await client.get(ordered.headers["location"])
    assert contract.status_code == 200
    assert contract.text.count('class="milestone-card"') == 1
    seen = text_of(contract)
    assert "Checkout and refunds" in seen
    assert "$350" in seen


def _developer_id(page: str) -> str:
    found = re.search(r'by <a href="/users/([0-9a-f-]{36})"', page)
    assert found
    return found.group(1)


async def test_drafts_are_hidden_and_your_own_service_cannot_be_ordered(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    stranger, _ = await person(pages, "ada@example.com", "Ada Lovelace", "client")
    draft_id = await offer(developer, action="draft")
    assert (await developer.get(f"/services/{draft_id}")).status_code == 200
    assert (await stranger.get(f"/services/{draft_id}")).status_code == 404
    assert "Stripe checkout" not in text_of(await stranger.get("/services"))

    published = await developer.post(f"/services/{draft_id}/publish")
    assert published.status_code == 303
    assert (await stranger.get(f"/services/{draft_id}")).status_code == 200
    await listed(stranger, "/services?q=stripe", "Stripe checkout")

    refused = await developer.post(
        f"/services/{draft_id}/order", {"package": "basic", "answers": ["https://beans.example"]}
    )
    assert refused.status_code == 403
    assert "You cannot buy your own service." in text_of(refused)

    paused = await developer.post(f"/services/{draft_id}/pause")
    assert paused.status_code == 303
    assert (await stranger.get(f"/services/{draft_id}")).status_code == 404


async def test_form_errors_keep_the_input(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    response = await developer.post(
        "/services/new", service_form(title="Hi", standard_price="abc", fast_days="")
    )
    assert response.status_code == 400
    seen = text_of(response)
    assert "at least 5 characters" in seen
    assert "Enter an amount such as 45 or 62.50." in seen
    assert "Enter how many days sooner you deliver" in seen
    assert 'value="abc"' in response.text
    assert "I add **Stripe checkout**" in response.text

    client, _ = await person(pages, "ada@example.com", "Ada Lovelace", "client")
    refused = await client.get("/services/new")
    assert "Offering services needs the developer role" in text_of(refused)
