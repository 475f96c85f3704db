"""Recommendations: the built-in recommender ranks crafted projects, developers and services
as its signals say and explains itself; the API keeps what is not yours out of reach; the
theme shows the boxes; the semantic recommender loads its model offline, ranks by meaning and
keeps its embeddings current from events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from mercato import hookimpl
from mercato.core.db import utcnow
from mercato.core.projects.models import Project
from mercato.plugins.recommendations.index import rebuild as rebuild_postings
from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_api import register
from tests.integration.test_listings import create as create_service
from tests.integration.test_listings import package
from tests.integration.test_listings import person as verified_person
from tests.marketplace_helpers import (
    API,
    MARKET_ACCOUNTS,
    App,
    Apps,
    Person,
    assert_problem,
    bid,
    client,
    developer,
    market_settings,
    open_market,
    post_project,
    set_row,
)

RECS = f"{API}/recommendations"


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


BUILT_IN_ONLY = {"disabled": ["semantic_recommendations"]}
"""The built-in recommender's own ranking, whether or not ``wordllama`` is installed."""


@pytest.fixture
async def app(apps: Apps) -> App:
    """A market whose recommender is the built-in one."""
    return await apps.open(await apps.settings(accounts=MARKET_ACCOUNTS, plugins=BUILT_IN_ONLY))


@pytest.fixture
async def semantic_app(apps: Apps) -> App:
    """A market with every built-in plugin: the semantic recommender answers when it can."""
    return await apps.open(await apps.settings(accounts=MARKET_ACCOUNTS, plugins={"disabled": []}))


async def eventually(
    fetch: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], timeout: float = 10.0
) -> Any:
    """``await fetch()`` until ``check`` holds of it (event handlers run after the request)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in time; last: {value!r}")
        await asyncio.sleep(0.05)


async def projects_for(app: App, who: Person, **params: Any) -> list[dict[str, Any]]:
    response = await app.client.get(f"{RECS}/projects", headers=who.auth, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def titles(items: list[dict[str, Any]]) -> list[str]:
    return [item["title"] for item in items]


async def reindex(app: App, *projects: dict[str, Any]) -> None:
    """Rebuild the candidate index of ``projects`` now (their events do it too, a moment later)."""

    async def rebuild() -> None:
        async with app.site.db.transaction() as session:
            await rebuild_postings(session, "project", [uuid.UUID(p["id"]) for p in projects])

    await app.on_loop(rebuild)


async def age(app: App, project: dict[str, Any], days: float) -> None:
    """Make ``project`` look published ``days`` ago."""
    await set_row(app, Project, project["id"], published_at=utcnow() - timedelta(days=days))
    await reindex(app, project)


# ---------------------------------------------------------------------------
# Ranking on crafted data
# ---------------------------------------------------------------------------


async def test_projects_matching_more_of_a_developers_skills_rank_first_with_reasons(app: App) -> None:
    owner = await client(app, "Olga")
    dev = await developer(app, "Dana", skills=["python", "django", "postgresql"])
    one = await post_project(app, owner, title="Needs only Python", skills=["python"])
    three = await post_project(
        app, owner, title="Python, Django and PostgreSQL", skills=["python", "django", "postgresql"]
    )
    unrelated = await post_project(app, owner, title="A logo", category="design-ui-ux", skills=["figma"])
    # the full match is the older one: skills outweigh freshness
    await age(app, three, 3)

    items = await eventually(lambda: projects_for(app, dev), lambda items: len(items) >= 2)
    assert titles(items)[:2] == [three["title"], one["title"]]
    assert unrelated["id"] not in [i["id"] for i in items]
    best = items[0]
    assert best["id"] == three["id"]
    assert best["url"] == f"/projects/{three['id']}"
    assert "Matches 3 of your 3 skills" in best["reasons"]
    assert "Posted 3 days ago" in best["reasons"]
    assert "Matches 1 of your 3 skills" in items[1]["reasons"]
    assert items[0]["score"] > items[1]["score"]


async def test_skills_match_through_the_taxonomys_aliases(app: App) -> None:
    owner = await client(app)
    dev = await developer(app, skills=["JS", "py"])  # aliases of javascript and python
    project = await post_project(
        app, owner, title="JavaScript widget", category="web-frontend", skills=["javascript"]
    )
    await eventually(lambda: projects_for(app, dev), lambda items: bool(items))
    # a project row whose skills were written as aliases still matches
    await set_row(app, Project, project["id"], skills=["ecmascript", "python3"])
    await reindex(app, project)
    items = await projects_for(app, dev)
    assert titles(items) == ["JavaScript widget"]
    assert "Matches 2 of your 2 skills" in items[0]["reasons"]


async def test_a_budget_that_fits_the_developers_rate_ranks_first(app: App) -> None:
    owner = await client(app)
    dev = await developer(app, skills=["python"])
    response = await app.client.patch(
        f"{API}/me", headers=dev.auth, json={"hourly_rate": {"amount": 80_00, "currency": "USD"}}
    )
    assert response.status_code == 200, response.text
    cheap = await post_project(
        app,
        owner,
        title="Too cheap for you",
        budget={"type": "hourly", "min": 20_00, "max": 30_00, "currency": "USD"},
    )
    fits = await post_project(
        app,
        owner,
        title="Pays your rate",
        budget={"type": "hourly", "min": 60_00, "max": 100_00, "currency": "USD"},
    )
    await age(app, fits, 1)  # older, and still first: the budget fits

    items = await eventually(lambda: projects_for(app, dev), lambda items: len(items) == 2)
    assert titles(items) == [fits["title"], cheap["title"]]
    assert "Budget fits your rate" in items[0]["reasons"]
    assert "Budget fits your rate" not in items[1]["reasons"]


async def test_own_closed_private_draft_and_bid_on_projects_never_appear(app: App) -> None:
    owner = await client(app)
    dev = await developer(app, skills=["python"])
    both = await register(app.client, "both@example.com", roles=("client", "developer"))
    assert (
        await app.client.patch(f"{API}/me", headers=both.auth, json={"skills": ["python"]})
    ).status_code == 200
    await post_project(app, owner, title="Visible")
    await post_project(app, owner, title="Draft", publish=False)
    await post_project(app, owner, title="Private", visibility="invite_only")
    closed = await post_project(app, owner, title="Closed")
    assert (
        await app.client.post(f"{API}/projects/{closed['id']}/close", headers=owner.auth)
    ).status_code == 200
    bid_on = await post_project(app, owner, title="Already bid on")
    await bid(app, dev, bid_on)
    own = await post_project(app, both, title="Own project")  # both roles: never sees their own

    await eventually(lambda: projects_for(app, both), lambda items: len(items) == 2)
    assert sorted(titles(await projects_for(app, both))) == ["Already bid on", "Visible"]
    assert own["title"] not in titles(await projects_for(app, both))
    await eventually(lambda: projects_for(app, dev), lambda items: len(items) == 2)
    assert sorted(titles(await projects_for(app, dev))) == ["Own project", "Visible"]


async def test_developers_who_fit_a_project_rank_by_skills_and_leave_out_bidders(app: App) -> None:
    owner = await client(app, "Olga")
    full = await developer(app, "Full Match", skills=["python", "django"])
    half = await developer(app, "Half Match", skills=["python", "figma", "ui-design"])
    await developer(app, "No Match", skills=["figma"])
    bidder = await developer(app, "Bidder", skills=["python", "django"])
    project = await post_project(app, owner, skills=["python", "django"])
    await bid(app, bidder, project)

    response = await app.client.get(
        f"{RECS}/developers", headers=owner.auth, params={"project_id": project["id"]}
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["title"] for i in items] == ["Full Match", "Half Match"]
    assert items[0]["id"] == full.id
    assert items[1]["id"] == half.id
    assert "Has 2 of the 2 skills you need" in items[0]["reasons"]
    assert "Has 1 of the 2 skills you need" in items[1]["reasons"]


async def test_similar_services_share_skills_and_leave_out_the_same_developers(apps: Apps) -> None:
    app = await open_market(apps, require_verified_email=False)
    ann = await verified_person(app, "ann@example.com")
    ben = await verified_person(app, "ben@example.com")
    cid = await verified_person(app, "cid@example.com")
    base = await create_service(app, ann, title="Django web apps", skills=["python", "django"], publish=True)
    await create_service(
        app, ann, title="Ann's other Django service", skills=["python", "django"], publish=True
    )
    close = await create_service(
        app, ben, title="Python and Django backends", skills=["python", "django"], publish=True
    )
    far = await create_service(
        app,
        cid,
        title="Logos",
        category="design-ui-ux",
        skills=["figma"],
        packages=[package("basic", price=90000)],
        publish=True,
    )

    async def similar() -> list[dict[str, Any]]:
        response = await app.client.get(f"{RECS}/services", params={"service_id": base["id"]})
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    items = await eventually(similar, lambda items: bool(items))
    assert [i["id"] for i in items] == [close["id"]]
    assert far["id"] not in [i["id"] for i in items]
    assert "Shares 2 of its 2 skills" in items[0]["reasons"]


# ---------------------------------------------------------------------------
# Who may ask
# ---------------------------------------------------------------------------


async def test_who_may_ask_for_which_recommendations(app: App) -> None:
    owner = await client(app)
    stranger = await client(app)
    dev = await developer(app, skills=["python"])
    project = await post_project(app, owner)

    assert_problem(await app.client.get(f"{RECS}/projects"), 401)
    assert_problem(await app.client.get(f"{RECS}/projects", headers=owner.auth), 403)
    assert (
        await app.client.get(f"{RECS}/projects", headers=dev.auth, params={"limit": 50})
    ).status_code == 200
    assert_problem(await app.client.get(f"{RECS}/projects", headers=dev.auth, params={"limit": 51}), 400)

    params = {"project_id": project["id"]}
    assert_problem(await app.client.get(f"{RECS}/developers", params=params), 401)
    assert_problem(await app.client.get(f"{RECS}/developers", headers=stranger.auth, params=params), 404)
    assert_problem(await app.client.get(f"{RECS}/developers", headers=dev.auth, params=params), 404)
    assert_problem(
        await app.client.get(
            f"{RECS}/developers", headers=owner.auth, params={"project_id": str(uuid.uuid4())}
        ),
        404,
    )
    assert_problem(await app.client.get(f"{RECS}/developers", headers=owner.auth), 400)
    assert (await app.client.get(f"{RECS}/developers", headers=owner.auth, params=params)).status_code == 200

    assert_problem(await app.client.get(f"{RECS}/services", params={"service_id": str(uuid.uuid4())}), 404)
    assert_problem(await app.client.get(f"{RECS}/services"), 400)


async def test_a_draft_service_has_no_similar_services(apps: Apps) -> None:
    app = await open_market(apps)
    ann = await verified_person(app, "ann@example.com")
    draft = await create_service(app, ann, publish=False)
    assert_problem(await app.client.get(f"{RECS}/services", params={"service_id": draft["id"]}), 404)


# ---------------------------------------------------------------------------
# Theme
# ---------------------------------------------------------------------------


async def page(app: App, who: Person, path: str) -> str:
    response = await app.client.get(path, headers={**who.auth, "Accept": "text/html"})
    assert response.status_code == 200, response.text
    return response.text


async def test_the_dashboard_project_and_service_pages_show_recommendations(apps: Apps) -> None:
    settings = await market_settings(apps)
    app = await apps.open(settings)
    owner = await client(app, "Olga")
    dev = await developer(app, "Dana", skills=["python"])
    newcomer = await developer(app, "Nia")
    project = await post_project(app, owner, title="Invoices in Python")

    await eventually(lambda: projects_for(app, dev), lambda items: bool(items))
    html = await page(app, dev, "/dashboard")
    assert "Recommended for you" in html
    assert "Invoices in Python" in html
    assert "Matches 1 of your 1 skill" in html
    assert "Add your skills" in await page(app, newcomer, "/dashboard")

    html = await page(app, owner, f"/projects/{project['id']}")
    assert "Developers who fit" in html
    assert "Dana" in html
    assert f'name="developer" value="{dev.id}"' in html
    assert "Developers who fit" not in await page(app, dev, f"/projects/{project['id']}")


# ---------------------------------------------------------------------------
# Another recommender wins
# ---------------------------------------------------------------------------


class StaffPicks:
    """A third-party recommender: the same hand-picked projects for every developer."""

    id = "staff_picks"

    def __init__(self) -> None:
        self.picks: list[uuid.UUID] = []

    async def projects_for_developer(
        self, session: Any, developer_id: uuid.UUID, limit: int = 10
    ) -> list[Any]:
        from mercato.core.recommend import Suggestion

        return [Suggestion(id=p, score=1.0, reasons=["Picked by our staff"]) for p in self.picks][:limit]

    async def developers_for_project(self, session: Any, project_id: uuid.UUID, limit: int = 10) -> list[Any]:
        return []

    async def similar_services(self, session: Any, service_id: uuid.UUID, limit: int = 10) -> list[Any]:
        return []

    @hookimpl
    def get_recommender(self, site: Any) -> StaffPicks:
        return self


async def test_an_installed_recommender_answers_before_the_built_in_one(apps: Apps) -> None:
    picks = StaffPicks()
    app = await apps.open(await market_settings(apps), extra=[("staff_picks", picks)])
    owner = await client(app)
    dev = await developer(app, skills=["figma"])
    project = await post_project(app, owner, title="Python, not Figma")
    picks.picks = [uuid.UUID(project["id"])]

    items = await projects_for(app, dev)
    assert [(i["title"], i["reasons"]) for i in items] == [("Python, not Figma", ["Picked by our staff"])]


# ---------------------------------------------------------------------------
# The semantic recommender
# ---------------------------------------------------------------------------

OFFLINE_LOAD = """
import os, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from mercato.plugins.semantic_recommendations.model import embed_now
vectors = embed_now(["train a machine learning model on sales data",
                     "a classifier predicting customer churn with scikit-learn",
                     "paint the walls of a bakery"])
close, far = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
print(f"{close:.3f} {far:.3f}")
sys.exit(0 if close > far else 1)
"""


def test_the_semantic_model_loads_and_embeds_with_no_network(tmp_path: Any) -> None:
    """No socket may be opened (a guard refuses them), the Hugging Face hub is told it is
    offline and the proxies lead nowhere: the weights and tokenizer come from the wheel."""
    import os
    import subprocess
    import sys

    pytest.importorskip("wordllama")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf"),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_LOAD], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not list((tmp_path).rglob("*.safetensors")), "the model was downloaded into a cache"


async def stored_embedding(app: App, kind: str, item_id: str) -> tuple[str, bytes] | None:
    from mercato.plugins.semantic_recommendations.models import Embedding

    async def read() -> tuple[str, bytes] | None:
        async with app.site.db.reading() as session:
            row = await session.get(Embedding, (kind, uuid.UUID(item_id)))
            return (row.text_hash, row.vector) if row else None

    return await app.on_loop(read)


async def test_the_semantic_recommender_ranks_the_closest_text_first(semantic_app: App) -> None:
    app = semantic_app
    pytest.importorskip("wordllama")
    from mercato.plugins.recommendations import SkillRecommender
    from mercato.plugins.semantic_recommendations.recommender import SemanticRecommender

    assert isinstance(app.site.plugins.recommender(app.site), SemanticRecommender)
    owner = await client(app)
    dev = await developer(app, skills=["python"])
    response = await app.client.patch(
        f"{API}/me",
        headers=dev.auth,
        json={
            "headline": "Machine learning engineer",
            "bio": "I train machine learning models and classifiers on business data: churn prediction, "
            "sales forecasting, recommendation models, with pandas and scikit-learn.",
        },
    )
    assert response.status_code == 200, response.text
    close = await post_project(
        app,
        owner,
        title="Predict which customers will churn",
        description="Train a classifier on our sales and customer data to forecast "
        "churn; we have two years of history in a warehouse.",
    )
    far = await post_project(
        app,
        owner,
        title="Fix our invoice PDF layout",
        description="The totals column of the printed invoices overlaps the footer; "
        "adjust the template so the layout prints on A4.",
    )
    await age(app, close, 2)  # the built-in ranks the newer one first

    await eventually(lambda: stored_embedding(app, "developer", dev.id), lambda row: row is not None)
    for project in (close, far):
        await eventually(
            lambda p=project: stored_embedding(app, "project", p["id"]), lambda row: row is not None
        )

    async def built_in() -> list[uuid.UUID]:
        async with app.site.db.reading() as session:
            found = await SkillRecommender(app.site).projects_for_developer(session, uuid.UUID(dev.id), 10)
            return [s.id for s in found]

    # Both are in the skill index once their events are handled; the built-in ranks the newer first.
    ranked = await eventually(lambda: app.on_loop(built_in), lambda ids: len(ids) == 2)
    assert ranked == [uuid.UUID(far["id"]), uuid.UUID(close["id"])]
    # The developer's vector is written again once their profile's event is handled.
    items = await eventually(
        lambda: projects_for(app, dev),
        lambda items: bool(items) and items[0]["reasons"][0] == "Described much like your profile",
    )
    assert titles(items) == [close["title"], far["title"]]
    assert "Matches 1 of your 1 skill" in items[0]["reasons"]


async def test_embeddings_are_written_on_events_and_follow_edits(semantic_app: App) -> None:
    app = semantic_app
    pytest.importorskip("wordllama")
    owner = await client(app)
    project = await post_project(app, owner, title="A mobile app for a bakery")
    first = await eventually(
        lambda: stored_embedding(app, "project", project["id"]), lambda row: row is not None
    )

    response = await app.client.patch(
        f"{API}/projects/{project['id']}",
        headers=owner.auth,
        json={"description": "Rewrite our Kubernetes deployment and Helm charts for three clusters."},
    )
    assert response.status_code == 200, response.text
    second = await eventually(
        lambda: stored_embedding(app, "project", project["id"]), lambda row: row is not None and row != first
    )
    assert second[0] != first[0]
    assert second[1] != first[1]
    assert len(second[1]) == 256 * 4  # float32 x the model's 256 dimensions
