"""The services API (listings, packages, add-ons, the gallery and orders), driven over HTTP on a
real app: validation, the status machine, who sees what, the ``validate_listing`` hook, ordering
(which makes a contract) and browsing with filters and cursors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from mercato import hookimpl
from mercato.core.events import Event, EventHandler
from mercato.core.listings.models import ServiceOrder
from mercato.core.listings.search import all_service_ids, service_documents
from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_api import (
    API,
    App,
    Apps,
    Person,
    assert_problem,
    link_token,
    png_bytes,
    register,
    wait_for_mail,
)

SERVICES = f"{API}/services"
ACCOUNTS = {"registrations_per_hour": 1000, "login_attempts_per_minute": 1000}


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


class ServiceEvents:
    """A plugin recording every ``service.*`` event its durable consumer receives."""

    def __init__(self) -> None:
        self.received: dict[uuid.UUID, Event] = {}

    @hookimpl
    def register_event_handlers(self, site: Any) -> list[EventHandler]:
        async def handle(event: Event, session: Any) -> None:
            self.received[event.id] = event

        return [EventHandler(id="test-listings-events", events=("service.*",), handle=handle)]

    async def payloads(self, event_type: str, count: int, *, within: float = 15.0) -> list[dict[str, Any]]:
        """The payloads of ``event_type`` once ``count`` arrived (and no more), oldest first."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            found = sorted(
                (e for e in list(self.received.values()) if e.type == event_type), key=lambda e: e.occurred_at
            )
            if len(found) >= count or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # would one more arrive?
        found = sorted(
            (e for e in list(self.received.values()) if e.type == event_type), key=lambda e: e.occurred_at
        )
        assert len(found) == count, f"expected {count} {event_type} events, got {len(found)}"
        return [e.payload for e in found]


@pytest.fixture
def recorder() -> ServiceEvents:
    return ServiceEvents()


@pytest.fixture
async def app(apps: Apps, recorder: ServiceEvents) -> App:
    return await apps.open(accounts=ACCOUNTS, extra=[("service_events", recorder)])


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


async def person(
    app: App, email: str, *, roles: tuple[str, ...] = ("developer",), verified: bool = True
) -> Person:
    """Someone signed up (and, by default, with a verified e-mail address)."""
    someone = await register(app.client, email, roles=roles, name=email.split("@")[0].title())
    if verified:
        token = link_token((await wait_for_mail(app, email, 1))[0], "/verify-email")
        response = await app.client.post(f"{API}/auth/verify-email", json={"token": token})
        assert response.status_code == 200, response.text
    return someone


def package(tier: str = "basic", **changes: Any) -> dict[str, Any]:
    base = {
        "tier": tier,
        "name": f"{tier.title()} site",
        "description": f"The {tier} option.",
        "price": {"basic": 5000, "standard": 12000, "premium": 30000}.get(tier, 5000),
        "currency": "USD",
        "delivery_days": {"basic": 7, "standard": 5, "premium": 3}.get(tier, 7),
        "revisions": 2,
        "features": ["Responsive layout", "Source code"],
    }
    return {**base, **changes}


def service_body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": "I will build your landing page",
        "description": "A fast, accessible **landing page** built with modern tooling.",
        "category": "web-frontend",
        "skills": ["python", "javascript"],
        "packages": [package("basic"), package("standard")],
        "addons": [],
        "faq": [{"question": "Do you host it?", "answer": "I can deploy it to your server."}],
        "requirements": [],
    }
    return {**base, **changes}


async def create(app: App, who: Person, **changes: Any) -> dict[str, Any]:
    response = await app.client.post(SERVICES, headers=who.auth, json=service_body(**changes))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def act(app: App, who: Person, service_id: str, action: str) -> Any:
    if action == "archive":
        return await app.client.delete(f"{SERVICES}/{service_id}", headers=who.auth)
    return await app.client.post(f"{SERVICES}/{service_id}/{action}", headers=who.auth)


async def in_status(app: App, who: Person, status: str, **changes: Any) -> dict[str, Any]:
    """A new listing of ``who`` brought into ``status`` through the API."""
    listing = await create(app, who, publish=status != "draft", **changes)
    steps = {"draft": [], "published": [], "paused": ["pause"], "archived": ["archive"]}[status]
    for step in steps:
        response = await act(app, who, listing["id"], step)
        assert response.status_code == 200, response.text
        listing = response.json()
    assert listing["status"] == status
    return listing


# ---------------------------------------------------------------------------
# Creating and validating
# ---------------------------------------------------------------------------


async def test_create_a_draft_then_publish_it(app: App, recorder: ServiceEvents) -> None:
    ada = await person(app, "ada@example.com")
    draft = await create(
        app,
        ada,
        addons=[
            {"kind": "extra_fast", "title": "Two days sooner", "price": 2000, "delivery_days_saved": 2},
            {"kind": "custom", "title": "A favicon", "price": 500},
        ],
        requirements=["  What is  your brand? ", "Which pages?"],
    )
    assert draft["status"] == "draft"
    assert draft["published_at"] is None
    assert draft["is_owner"] is True
    assert draft["developer_name"] == "Ada"
    assert "<strong>landing page</strong>" in draft["description_html"]
    assert [p["tier"] for p in draft["packages"]] == ["basic", "standard"]
    assert draft["price_from"] == 5000
    assert draft["fastest_delivery_days"] == 5
    assert draft["currency"] == "USD"
    assert [a["kind"] for a in draft["addons"]] == ["extra_fast", "custom"]
    assert draft["addons"][0]["currency"] == "USD"
    assert draft["requirements"] == ["What is your brand?", "Which pages?"]
    assert draft["skills"] == ["python", "javascript"]
    assert draft["faq"] == [{"question": "Do you host it?", "answer": "I can deploy it to your server."}]

    published = await act(app, ada, draft["id"], "publish")
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    assert published.json()["published_at"] is not None
    anonymous = await app.client.get(f"{SERVICES}/{draft['id']}")
    assert anonymous.status_code == 200
    assert anonymous.json()["is_owner"] is False
    assert await recorder.payloads("service.published", 1) == [
        {"listing_id": draft["id"], "developer_id": ada.id, "resumed": False}
    ]


async def test_publish_at_once_and_skill_aliases(app: App) -> None:
    ada = await person(app, "ada@example.com")
    listing = await create(app, ada, publish=True, skills=["Python", "js"], packages=[package("premium")])
    assert listing["status"] == "published"
    assert listing["skills"] == ["python", "javascript"]
    assert [p["tier"] for p in listing["packages"]] == ["premium"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"packages": [package("basic"), package("standard"), package("premium"), package("basic")]},
            "packages",
        ),
        ({"packages": [package("basic"), package("basic", name="Again")]}, "packages"),
        ({"packages": [package("basic"), package("standard", currency="EUR")]}, "packages"),
        ({"packages": [package("basic", price=0)]}, "packages"),
        ({"packages": [package("basic", price=-100)]}, "packages"),
        ({"packages": [package("basic", delivery_days=0)]}, "packages"),
        ({"packages": [package("basic", delivery_days=366)]}, "packages"),
        ({"packages": [package("basic", revisions=21)]}, "packages"),
        ({"packages": [package("basic", revisions=-2)]}, "packages"),
        ({"packages": [package("gold")]}, "packages"),
        ({"packages": [package("basic", name="   ")]}, "packages"),
        ({"faq": [{"question": f"Q{i}?", "answer": "A."} for i in range(11)]}, "faq"),
        ({"faq": [{"question": "Q?", "answer": "   "}]}, "faq"),
        ({"requirements": [f"Question {i}?" for i in range(6)]}, "requirements"),
        ({"category": "knitting"}, "category"),
        ({"skills": ["python", "cobol-9000"]}, "skills"),
        ({"addons": [{"kind": "extra_fast", "title": "Faster", "price": 100}]}, "addons"),
        (
            {"addons": [{"kind": "extra_fast", "title": "Faster", "price": 100, "delivery_days_saved": 7}]},
            "addons",
        ),
        ({"addons": [{"kind": "custom", "title": "Logo", "price": 100, "extra_revisions": 2}]}, "addons"),
        ({"addons": [{"kind": "custom", "title": "Logo", "price": 0}]}, "addons"),
        (
            {"addons": [{"kind": "extra_revision", "title": "More", "price": 100, "extra_revisions": 1}] * 2},
            "addons",
        ),
        ({"addons": [{"id": str(uuid.uuid4()), "kind": "custom", "title": "Logo", "price": 100}]}, "addons"),
        ({"title": "Hi"}, "title"),
        ({"publish": True, "packages": []}, "packages"),
    ],
)
async def test_create_validation_errors_name_the_field(app: App, changes: dict[str, Any], field: str) -> None:
    ada = await person(app, "ada@example.com")
    response = await app.client.post(SERVICES, headers=ada.auth, json=service_body(**changes))
    assert_problem(response, 400, field=field)
    mine = await app.client.get(f"{SERVICES}/mine", headers=ada.auth)
    assert mine.json() == [], "nothing is saved after a 400"


async def test_only_developers_offer_services_and_publishing_needs_a_verified_email(app: App) -> None:
    assert_problem(await app.client.post(SERVICES, json=service_body()), 401)
    client = await person(app, "carol@example.com", roles=("client",))
    assert_problem(await app.client.post(SERVICES, headers=client.auth, json=service_body()), 403)

    unverified = await person(app, "una@example.com", verified=False)
    assert_problem(
        await app.client.post(SERVICES, headers=unverified.auth, json=service_body(publish=True)), 403
    )
    draft = await create(app, unverified)  # drafts are fine
    assert_problem(await act(app, unverified, draft["id"], "publish"), 403)


async def test_a_draft_may_have_no_packages_until_it_is_published(app: App) -> None:
    ada = await person(app, "ada@example.com")
    draft = await create(app, ada, packages=[])
    assert draft["packages"] == []
    assert draft["price_from"] is None
    assert draft["currency"] is None
    assert_problem(await act(app, ada, draft["id"], "publish"), 400, field="packages")
    patched = await app.client.patch(
        f"{SERVICES}/{draft['id']}", headers=ada.auth, json={"packages": [package()]}
    )
    assert patched.status_code == 200, patched.text
    assert (await act(app, ada, draft["id"], "publish")).status_code == 200


async def test_patch_replaces_packages_and_addons_as_a_whole(app: App, recorder: ServiceEvents) -> None:
    ada = await person(app, "ada@example.com")
    listing = await create(
        app,
        ada,
        publish=True,
        addons=[
            {"kind": "custom", "title": "Logo", "price": 900},
            {"kind": "custom", "title": "Copy", "price": 400},
        ],
    )
    basic_id = listing["packages"][0]["id"]
    logo = listing["addons"][0]
    response = await app.client.patch(
        f"{SERVICES}/{listing['id']}",
        headers=ada.auth,
        json={
            "title": "I will build your  marketing site",
            "packages": [package("basic", price=6000), package("premium")],
            "addons": [{"id": logo["id"], "kind": "custom", "title": "Logo, vector", "price": 1100}],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "I will build your marketing site"
    assert [(p["tier"], p["price"]) for p in body["packages"]] == [("basic", 6000), ("premium", 30000)]
    assert body["packages"][0]["id"] == basic_id, "a tier that stays keeps its id"
    assert [(a["id"], a["title"], a["price"]) for a in body["addons"]] == [(logo["id"], "Logo, vector", 1100)]
    assert body["faq"] == listing["faq"], "absent fields stay"
    assert body["status"] == "published"

    assert_problem(
        await app.client.patch(f"{SERVICES}/{listing['id']}", headers=ada.auth, json={"packages": []}),
        400,
        field="packages",
    )
    assert_problem(
        await app.client.patch(
            f"{SERVICES}/{listing['id']}",
            headers=ada.auth,
            json={"packages": [package("basic"), package("standard", currency="EUR")]},
        ),
        400,
        field="packages",
    )
    unchanged = (await app.client.get(f"{SERVICES}/{listing['id']}")).json()
    assert [p["tier"] for p in unchanged["packages"]] == ["basic", "premium"]
    await recorder.payloads("service.updated", 1)


# ---------------------------------------------------------------------------
# The status machine and who sees what
# ---------------------------------------------------------------------------

STATUSES = ("draft", "published", "paused", "archived")
EXPECTED = {
    # status: {action: (http status, resulting status)}
    "draft": {
        "publish": (200, "published"),
        "pause": (409, None),
        "resume": (409, None),
        "archive": (200, "archived"),
    },
    "published": {
        "publish": (409, None),
        "pause": (200, "paused"),
        "resume": (409, None),
        "archive": (200, "archived"),
    },
    "paused": {
        "publish": (409, None),
        "pause": (409, None),
        "resume": (200, "published"),
        "archive": (200, "archived"),
    },
    "archived": {"publish": (409, None), "pause": (409, None), "resume": (409, None), "archive": (409, None)},
}


async def test_every_transition_of_the_status_machine(app: App, recorder: ServiceEvents) -> None:
    ada = await person(app, "ada@example.com")
    for status in STATUSES:
        for action, (code, after) in EXPECTED[status].items():
            listing = await in_status(app, ada, status)
            response = await act(app, ada, listing["id"], action)
            assert response.status_code == code, (
                f"{status} --{action}--> {response.status_code}: {response.text}"
            )
            now = (await app.client.get(f"{SERVICES}/{listing['id']}", headers=ada.auth)).json()
            assert now["status"] == (after or status), f"{status} --{action}"
            if action == "resume" and code == 200:
                assert now["published_at"] == listing["published_at"], "resuming keeps the first publication"
    archived = await in_status(app, ada, "archived")
    assert_problem(
        await app.client.patch(
            f"{SERVICES}/{archived['id']}", headers=ada.auth, json={"title": "New title here"}
        ),
        409,
    )
    assert_problem(
        await app.client.post(
            f"{SERVICES}/{archived['id']}/gallery",
            headers=ada.auth,
            files={"file": ("a.png", png_bytes(), "image/png")},
        ),
        409,
    )
    # 4 listings paused (and 5 archived) to set the matrix up, plus the allowed transitions
    await recorder.payloads("service.paused", 4 + 1)
    await recorder.payloads("service.archived", 5 + 3)
    resumed = [p for p in await recorder.payloads("service.published", 13 + 1 + 1) if p["resumed"]]
    assert len(resumed) == 1


async def test_visibility_of_each_status(app: App) -> None:
    ada = await person(app, "ada@example.com")
    bob = await person(app, "bob@example.com")
    for status in STATUSES:
        listing = await in_status(app, ada, status)
        url = f"{SERVICES}/{listing['id']}"
        assert (await app.client.get(url, headers=ada.auth)).status_code == 200, status
        for viewer in ({}, bob.auth):
            response = await app.client.get(url, headers=viewer)
            if status == "published":
                assert response.status_code == 200, response.text
            else:
                assert_problem(response, 404)
        # someone else's listing: 403 when they can see it, 404 when they cannot
        edit = await app.client.patch(url, headers=bob.auth, json={"title": "Mine now, thanks"})
        assert_problem(edit, 403 if status == "published" else 404)
        assert_problem(await act(app, bob, listing["id"], "archive"), 403 if status == "published" else 404)
    assert_problem(await app.client.get(f"{SERVICES}/{uuid.uuid4()}"), 404)

    browse = (await app.client.get(SERVICES)).json()
    assert [i["status"] for i in browse["items"]] == ["published"]
    mine = (await app.client.get(f"{SERVICES}/mine", headers=ada.auth)).json()
    assert sorted(i["status"] for i in mine) == sorted(STATUSES)
    paused = (await app.client.get(f"{SERVICES}/mine?status=paused", headers=ada.auth)).json()
    assert [i["status"] for i in paused] == ["paused"]
    assert (await app.client.get(f"{SERVICES}/mine", headers=bob.auth)).json() == []
    assert_problem(await app.client.get(f"{SERVICES}/mine"), 401)


# ---------------------------------------------------------------------------
# The gallery
# ---------------------------------------------------------------------------


async def test_gallery_uploads(app: App) -> None:
    ada = await person(app, "ada@example.com")
    bob = await person(app, "bob@example.com")
    listing = await create(app, ada, publish=True)
    url = f"{SERVICES}/{listing['id']}/gallery"
    first = await app.client.post(
        url, headers=ada.auth, files={"file": ("shot.png", png_bytes((40, 30)), "image/png")}
    )
    assert first.status_code == 201, first.text
    image = first.json()["gallery"][0]
    assert image["key"].startswith("services/")
    assert image["url"].startswith("/media/services/")
    assert (image["width"], image["height"]) == (40, 30)
    served = await app.client.get(image["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"

    text = await app.client.post(
        url, headers=ada.auth, files={"file": ("notes.png", b"just text", "image/png")}
    )
    assert_problem(text, 400)
    assert_problem(
        await app.client.post(url, headers=bob.auth, files={"file": ("a.png", png_bytes(), "image/png")}), 403
    )
    assert_problem(await app.client.post(url, files={"file": ("a.png", png_bytes(), "image/png")}), 401)

    for _ in range(7):
        response = await app.client.post(
            url, headers=ada.auth, files={"file": ("a.png", png_bytes(), "image/png")}
        )
        assert response.status_code == 201, response.text
    gallery = response.json()["gallery"]
    assert len(gallery) == 8
    ninth = await app.client.post(url, headers=ada.auth, files={"file": ("a.png", png_bytes(), "image/png")})
    assert_problem(ninth, 400, field="image")

    # PATCH reorders and removes; removed files leave storage
    keys = [i["key"] for i in gallery]
    kept = [keys[3], keys[0]]
    patched = await app.client.patch(f"{SERVICES}/{listing['id']}", headers=ada.auth, json={"gallery": kept})
    assert patched.status_code == 200, patched.text
    assert [i["key"] for i in patched.json()["gallery"]] == kept
    assert (await app.client.get(gallery[1]["url"])).status_code == 404
    assert (await app.client.get(gallery[0]["url"])).status_code == 200
    assert_problem(
        await app.client.patch(
            f"{SERVICES}/{listing['id']}", headers=ada.auth, json={"gallery": ["avatars/x.webp"]}
        ),
        400,
        field="gallery",
    )


# ---------------------------------------------------------------------------
# The validate_listing hook
# ---------------------------------------------------------------------------


class NoOffPlatformPayment:
    """A moderation plugin: no PayPal links anywhere in a listing."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    @hookimpl
    def validate_listing(self, listing: dict[str, Any]) -> str | None:
        self.seen.append(listing)
        texts = [listing["title"], listing["description"]]
        texts += [f"{f['question']} {f['answer']}" for f in listing["faq"]]
        texts += [" ".join([p["name"], p["description"], *p["features"]]) for p in listing["packages"]]
        if any("paypal.me" in text.lower() for text in texts):
            return "Payments go through the marketplace: remove links to off-platform payment."
        return None


class NoShouting:
    @hookimpl
    def validate_listing(self, site: Any, listing: dict[str, Any]) -> str | None:
        assert site is not None
        return "Please do not shout in the title." if listing["title"].isupper() else None


async def test_validate_listing_rejects_and_allows_content(apps: Apps) -> None:
    moderation = NoOffPlatformPayment()
    app = await apps.open(accounts=ACCOUNTS, extra=[("no_paypal", moderation), ("no_shouting", NoShouting())])
    ada = await person(app, "ada@example.com")

    clean = await create(app, ada)
    assert moderation.seen[-1]["title"] == "I will build your landing page"
    assert moderation.seen[-1]["developer_id"] == ada.id
    assert [p["tier"] for p in moderation.seen[-1]["packages"]] == ["basic", "standard"]
    assert moderation.seen[-1]["faq"] == [
        {"question": "Do you host it?", "answer": "I can deploy it to your server."}
    ]

    body = assert_problem(
        await app.client.post(
            SERVICES,
            headers=ada.auth,
            json=service_body(packages=[package(features=["Pay at paypal.me/ada for a discount"])]),
        ),
        400,
        field="content",
    )
    assert "off-platform payment" in str(body)
    both = assert_problem(
        await app.client.post(
            SERVICES,
            headers=ada.auth,
            json=service_body(
                title="I WILL BUILD IT FAST", description="Pay me via PayPal.me/ada and save twenty percent."
            ),
        ),
        400,
        field="content",
    )
    assert "off-platform payment" in str(both)
    assert "do not shout" in str(both)

    faq = [{"question": "How to pay?", "answer": "Use https://paypal.me/ada"}]
    edit = await app.client.patch(f"{SERVICES}/{clean['id']}", headers=ada.auth, json={"faq": faq})
    assert_problem(edit, 400, field="content")
    assert (await app.client.get(f"{SERVICES}/{clean['id']}", headers=ada.auth)).json()["faq"] == clean["faq"]
    published = await act(app, ada, clean["id"], "publish")
    assert published.status_code == 200, published.text
    assert len((await app.client.get(f"{SERVICES}/mine", headers=ada.auth)).json()) == 1


# ---------------------------------------------------------------------------
# Ordering
# ---------------------------------------------------------------------------


async def shop(app: App) -> tuple[Person, Person, dict[str, Any]]:
    """A developer with a published listing (two packages, three add-ons, two questions) and
    a verified client."""
    dev = await person(app, "dev@example.com")
    client = await person(app, "carol@example.com", roles=("client",))
    listing = await create(
        app,
        dev,
        publish=True,
        packages=[package("basic"), package("standard", revisions=3)],
        addons=[
            {"kind": "extra_fast", "title": "Two days sooner", "price": 2000, "delivery_days_saved": 2},
            {"kind": "extra_revision", "title": "Two more revisions", "price": 1500, "extra_revisions": 2},
            {"kind": "custom", "title": "A favicon", "price": 500},
        ],
        requirements=["What is your brand?", "Which pages do you need?"],
    )
    return dev, client, listing


async def test_ordering_makes_a_contract_both_parties_see(app: App, recorder: ServiceEvents) -> None:
    dev, client, listing = await shop(app)
    fast, more, _ = listing["addons"]
    response = await app.client.post(
        f"{SERVICES}/{listing['id']}/orders",
        headers=client.auth,
        json={"package": "standard", "addons": [more["id"], fast["id"]], "requirements": ["Acme", "Home"]},
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert set(order) == {"order_id", "contract_id"}

    for who in (client, dev):
        seen = await app.client.get(f"{API}/contracts/{order['contract_id']}", headers=who.auth)
        assert seen.status_code == 200, seen.text
        contract = seen.json()
    assert contract["status"] == "pending_funding"
    assert contract["origin_type"] == "service_order"
    assert contract["origin_id"] == order["order_id"]
    assert contract["client_id"] == client.id
    assert contract["developer_id"] == dev.id
    assert contract["title"] == listing["title"]
    assert contract["currency"] == "USD"
    assert contract["total"] == 12000 + 2000 + 1500
    [milestone] = contract["milestones"]
    assert milestone["title"] == "Standard site"
    assert milestone["amount"] == 15500
    assert milestone["due_days"] == 5 - 2
    assert milestone["status"] == "pending"
    assert "Two more revisions" in milestone["description"]

    stranger = await person(app, "eve@example.com", roles=("client",))
    assert_problem(
        await app.client.get(f"{API}/contracts/{order['contract_id']}", headers=stranger.auth), 404
    )

    ordered = await recorder.payloads("service.ordered", 1)
    assert ordered == [
        {
            "order_id": order["order_id"],
            "listing_id": listing["id"],
            "contract_id": order["contract_id"],
            "client_id": client.id,
            "developer_id": dev.id,
            "total": 15500,
            "currency": "USD",
        }
    ]
    assert (await app.client.get(f"{SERVICES}/{listing['id']}")).json()["order_count"] == 1

    async def stored() -> SimpleNamespace:
        async with app.site.db.reading() as session:
            row = (await session.execute(select(ServiceOrder))).scalar_one()
            return SimpleNamespace(**{c.key: getattr(row, c.key) for c in ServiceOrder.__table__.columns})

    row = await app.on_loop(stored)
    assert row.revisions == 3 + 2
    assert row.delivery_days == 3
    assert row.requirements_answers == [
        {"question": "What is your brand?", "answer": "Acme"},
        {"question": "Which pages do you need?", "answer": "Home"},
    ]
    assert [a["title"] for a in row.addons] == ["Two days sooner", "Two more revisions"]
    assert row.package["name"] == "Standard site"

    # the developer drops the standard tier: the order keeps its snapshot
    patched = await app.client.patch(
        f"{SERVICES}/{listing['id']}", headers=dev.auth, json={"packages": [package()]}
    )
    assert patched.status_code == 200, patched.text
    row = await app.on_loop(stored)
    assert row.package_id is None
    assert row.package["tier"] == "standard"
    # archiving keeps everything the order points to
    assert (await act(app, dev, listing["id"], "archive")).status_code == 200
    assert (
        await app.client.get(f"{API}/contracts/{order['contract_id']}", headers=client.auth)
    ).status_code == 200


async def test_order_rules(app: App, recorder: ServiceEvents) -> None:
    dev, client, listing = await shop(app)
    url = f"{SERVICES}/{listing['id']}/orders"
    good = {"package": "basic", "addons": [], "requirements": ["Acme", "Home"]}

    assert_problem(await app.client.post(url, json=good), 401)
    assert_problem(await app.client.post(url, headers=dev.auth, json=good), 403)
    assert_problem(
        await app.client.post(url, headers=client.auth, json={**good, "requirements": ["Acme"]}),
        400,
        field="requirements",
    )
    assert_problem(
        await app.client.post(url, headers=client.auth, json={**good, "requirements": ["Acme", " "]}),
        400,
        field="requirements",
    )
    assert_problem(
        await app.client.post(url, headers=client.auth, json={**good, "addons": [str(uuid.uuid4())]}),
        400,
        field="addons",
    )
    fast = listing["addons"][0]["id"]
    assert_problem(
        await app.client.post(url, headers=client.auth, json={**good, "addons": [fast, fast]}),
        400,
        field="addons",
    )
    assert_problem(
        await app.client.post(url, headers=client.auth, json={**good, "package": "premium"}),
        400,
        field="package",
    )
    unverified = await person(app, "una@example.com", roles=("client",), verified=False)
    assert_problem(await app.client.post(url, headers=unverified.auth, json=good), 403)

    # a developer (without the client role) may buy another developer's service
    other_dev = await person(app, "olga@example.com")
    assert (await app.client.post(url, headers=other_dev.auth, json=good)).status_code == 201

    assert (await act(app, dev, listing["id"], "pause")).status_code == 200
    assert_problem(await app.client.post(url, headers=client.auth, json=good), 409)
    assert (await act(app, dev, listing["id"], "resume")).status_code == 200
    assert (await app.client.post(url, headers=client.auth, json=good)).status_code == 201
    assert (await act(app, dev, listing["id"], "archive")).status_code == 200
    assert_problem(await app.client.post(url, headers=client.auth, json=good), 409)

    draft = await create(app, dev)
    assert_problem(
        await app.client.post(
            f"{SERVICES}/{draft['id']}/orders", headers=client.auth, json={"package": "basic"}
        ),
        404,
    )
    assert_problem(
        await app.client.post(
            f"{SERVICES}/{uuid.uuid4()}/orders", headers=client.auth, json={"package": "basic"}
        ),
        404,
    )
    await recorder.payloads("service.ordered", 2)
    contracts = (await app.client.get(f"{API}/contracts", headers=client.auth)).json()["items"]
    assert len(contracts) == 1


# ---------------------------------------------------------------------------
# Browsing
# ---------------------------------------------------------------------------


async def test_browse_filters_and_cursor_walk(app: App) -> None:
    ada = await person(app, "ada@example.com")
    bob = await person(app, "bob@example.com")
    made = [
        await create(
            app,
            ada,
            publish=True,
            title="Frontend one",
            category="web-frontend",
            skills=["javascript"],
            packages=[package("basic", price=3000, delivery_days=2)],
        ),
        await create(
            app,
            ada,
            publish=True,
            title="Backend two",
            category="web-backend",
            skills=["python"],
            packages=[package("basic", price=8000, delivery_days=10)],
        ),
        await create(
            app,
            bob,
            publish=True,
            title="Mobile three",
            category="mobile-ios",
            skills=["python"],
            packages=[package("basic", price=20000, currency="EUR", delivery_days=20)],
        ),
        await create(
            app,
            bob,
            publish=True,
            title="Frontend four",
            category="web-frontend",
            skills=["python", "javascript"],
            packages=[
                package("basic", price=50000, delivery_days=30),
                package("premium", price=90000, delivery_days=4),
            ],
        ),
        await create(
            app,
            bob,
            publish=True,
            title="Backend five",
            category="web-backend",
            skills=[],
            packages=[package("basic", price=1000, delivery_days=1)],
        ),
    ]
    hidden = await in_status(app, ada, "paused", title="Paused six", category="web-frontend")
    await create(app, ada, title="Draft seven")

    async def titles(query: str = "") -> list[str]:
        response = await app.client.get(f"{SERVICES}{query}")
        assert response.status_code == 200, response.text
        return [i["title"] for i in response.json()["items"]]

    newest_first = [m["title"] for m in reversed(made)]
    assert await titles() == newest_first
    assert hidden["title"] not in newest_first
    assert await titles("?category=web") == ["Backend five", "Frontend four", "Backend two", "Frontend one"]
    assert await titles("?category=mobile-ios") == ["Mobile three"]
    assert await titles("?category=web-frontend&category=mobile") == [
        "Frontend four",
        "Mobile three",
        "Frontend one",
    ]
    assert await titles("?skill=python") == ["Frontend four", "Mobile three", "Backend two"]
    assert await titles("?skill=python&skill=javascript") == ["Frontend four"]
    assert await titles("?max_price=8000") == ["Backend five", "Backend two", "Frontend one"]
    assert await titles("?max_delivery_days=4") == ["Backend five", "Frontend four", "Frontend one"]
    assert await titles("?currency=EUR") == ["Mobile three"]
    assert await titles("?category=web&skill=python&max_delivery_days=10") == ["Frontend four", "Backend two"]
    assert_problem(await app.client.get(f"{SERVICES}?max_price=0"), 400)
    assert_problem(await app.client.get(f"{SERVICES}?max_delivery_days=400"), 400)

    walked: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = (await app.client.get(f"{SERVICES}{query}")).json()
        walked += [i["title"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == newest_first
    assert pages == 3
    assert_problem(await app.client.get(f"{SERVICES}?cursor=not-a-cursor"), 400, field="cursor")

    # search documents for the search backend
    async def documents() -> tuple[list[uuid.UUID], list[Any]]:
        async with app.site.db.reading() as session:
            ids = await all_service_ids(session)
            return ids, await service_documents(session, [*ids, uuid.UUID(hidden["id"])])

    ids, docs = await app.on_loop(documents)
    assert sorted(map(str, ids)) == sorted(m["id"] for m in made)
    four = next(d for d in docs if d.title == "Frontend four")
    assert (four.price_min, four.price_max, four.delivery_days) == (50000, 90000, 4)
    assert four.kind == "service"
    assert four.category == "web-frontend"
    assert four.currency == "USD"
    assert "Premium site" in four.text
    assert "Python" in four.text
    assert str(four.owner_id) == bob.id
    assert len(docs) == 5, "the paused listing has no document"
