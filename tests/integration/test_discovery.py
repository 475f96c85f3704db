"""GET /api/v1/search end to end: domain events reach the search index through JetStream,
and results come back through the domains, which check access again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Databases, MakeSettings
from tests.marketplace_helpers import (
    API,
    App,
    Apps,
    assert_problem,
    client,
    developer,
    open_market,
    post_project,
)


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


async def search(app: App, **params: Any) -> dict[str, Any]:
    response = await app.client.get(f"{API}/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def eventually(app: App, want: set[str], **params: Any) -> dict[str, Any]:
    """Poll until the result ids are ``want`` (indexing runs after commit, in the background)."""
    found: dict[str, Any] = {}
    for _ in range(100):
        found = await search(app, **params)
        if {item["id"] for item in found["items"]} == want:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"search {params} gave {[i.get('title') for i in found['items']]}")


async def test_projects_become_findable_when_published_and_vanish_when_closed(apps: Apps) -> None:
    app = await open_market(apps)
    owner = await client(app)
    stripe = await post_project(
        app,
        owner,
        title="Stripe checkout for a Django shop",
        skills=["python", "django"],
        category="web-backend",
    )
    await post_project(app, owner, title="Stripe billing portal, draft", publish=False)
    await post_project(app, owner, title="Stripe secret invite-only work", visibility="invite_only")
    ios = await post_project(
        app, owner, title="Native iOS app for bookings", category="mobile-ios", skills=["swift"]
    )

    found = await eventually(app, {stripe["id"]}, q="stripe", type="projects")
    assert found["items"][0]["title"] == "Stripe checkout for a Django shop"
    assert found["total"] == 1
    await eventually(app, {stripe["id"]}, q="strip", type="projects")  # prefix
    await eventually(app, {ios["id"]}, type="projects", category="mobile")  # a parent finds its children
    await eventually(app, {stripe["id"]}, type="projects", skill="django")
    faceted = await search(app, type="projects", facets="true")
    assert faceted["skill_facets"]["python"] == 1
    assert faceted["skill_facets"]["swift"] == 1

    closed = await app.client.post(f"{API}/projects/{stripe['id']}/close", headers=owner.auth)
    assert closed.status_code == 200
    await eventually(app, set(), q="stripe", type="projects")


async def test_developers_are_found_by_skill_and_text(apps: Apps) -> None:
    app = await open_market(apps)
    rustacean = await developer(app, "Ferris Crab", skills=["rust"])
    await developer(app, "Guido Snake", skills=["python"])
    found = await eventually(app, {rustacean.id}, type="developers", skill="rust")
    assert found["items"][0]["display_name"] == "Ferris Crab"
    assert "email" not in found["items"][0]
    await eventually(app, {rustacean.id}, type="developers", q="ferris")


async def test_hostile_and_bad_queries_are_answered_cleanly(apps: Apps) -> None:
    app = await open_market(apps)
    for q in ['c++ "', "AND OR NOT", "'; drop table projects; --", "\U0001f680" * 50]:
        assert (await search(app, q=q, type="projects"))["items"] == []
    assert_problem(await app.client.get(f"{API}/search", params={"cursor": "garbage"}), 400, field="cursor")
    assert_problem(await app.client.get(f"{API}/search", params={"type": "people"}), 400)
