"""Recommendations: how good (precision@10 on the demo data) and how fast (a developer's
request on the 100k-project data).

1. **Precision@10.** A fresh site gets the demo data (:func:`mercato.core.demo.prepare_demo`),
   then the candidate index and the embeddings are built. For every contract that came from
   a proposal, the hired developer's skills H are the ground truth:

   * *developers for the project*: each of the top 10 suggested developers is **relevant**
     when they list at least ``min(2, |H|)`` of the skills in H;
   * *projects for the hired developer*: each of the top 10 suggested open projects is
     relevant when it names at least ``min(2, |H|)`` of the skills in H.

   precision@10 = relevant / 10 (missing slots count as misses), averaged over the contracts.
   Printed for the built-in recommender, the semantic one (when ``wordllama`` is installed)
   and a random ranking of the same pool, the floor to beat.

2. **Latency.** The data of ``_marketplace_data`` (100k open projects, 20k developers on
   PostgreSQL; 10k / 2k on SQLite; ``MERCATO_BENCH_PROJECTS`` and friends override), the
   candidate index rebuilt, then DEVELOPERS_ASKING new developers (registered through the API,
   each with the skills of one track and an hourly rate) ask
   ``GET /api/v1/recommendations/projects`` QUERIES times in turn, through the app in-process.
   Timed: the HTTP call, the recommender alone, and the **baseline**, a bare indexed SELECT of
   the ten newest open projects on the same session. Target: HTTP p95 < 50 ms.

Run: ``pytest tests/benchmarks/test_bench_recommendations.py -s`` (add the PostgreSQL and NATS
variables for the 100k run). Timings are printed, never asserted.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from mercato import create_app
from mercato.core.accounts.models import UserSkill
from mercato.core.demo import TRACKS, prepare_demo
from mercato.core.projects.models import Project, ProjectStatus, Proposal
from mercato.core.recommend import Recommender, Suggestion
from mercato.core.settings import load_settings
from mercato.core.site import Site
from mercato.plugins.recommendations import SkillRecommender
from mercato.plugins.recommendations.index import rebuild_all
from tests.benchmarks._bench import ms, percentile, report
from tests.benchmarks._marketplace_data import seed_marketplace
from tests.conftest import TEST_DATABASE_URL, Databases, _delete_streams, _with_database
from tests.marketplace_helpers import MARKET_ACCOUNTS

ON_POSTGRESQL = bool(TEST_DATABASE_URL)
PROJECTS = int(os.environ.get("MERCATO_BENCH_PROJECTS", 100_000 if ON_POSTGRESQL else 10_000))
DEVELOPERS = int(os.environ.get("MERCATO_BENCH_DEVELOPERS", 20_000 if ON_POSTGRESQL else 2_000))
CLIENTS = int(os.environ.get("MERCATO_BENCH_CLIENTS", 5_000 if ON_POSTGRESQL else 500))
DEVELOPERS_ASKING = 20
QUERIES = 300
WARMUP_QUERIES = 30
K = 10
TARGET_P95_SECONDS = 0.050


def semantic(site: Site) -> Recommender | None:
    try:
        from mercato.plugins.semantic_recommendations.recommender import SemanticRecommender
    except ImportError:
        return None
    return SemanticRecommender(SkillRecommender(site))


def relevant(skills: set[str], hired: set[str]) -> bool:
    return len(skills & hired) >= min(2, len(hired))


class RandomRanking:
    """The floor: the built-in recommender's pool of 200, shuffled."""

    def __init__(self, site: Site) -> None:
        self.pool = SkillRecommender(site)
        self.rng = random.Random(7)

    async def developers_for_project(
        self, session: Any, project_id: uuid.UUID, limit: int
    ) -> list[Suggestion]:
        found = await self.pool.developers_for_project(session, project_id, 200)
        return self.rng.sample(found, min(limit, len(found)))

    async def projects_for_developer(
        self, session: Any, developer_id: uuid.UUID, limit: int
    ) -> list[Suggestion]:
        found = await self.pool.projects_for_developer(session, developer_id, 200)
        return self.rng.sample(found, min(limit, len(found)))


@pytest.mark.timeout(1800)
async def test_precision_at_10_of_both_recommenders(
    databases: Databases, nats_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        tmp_path,
        environ={},
        overrides={
            "plugins": {"load_entry_points": False},
            "events": {"nats_url": nats_url, "stream": "BENCH_RECS", "subject_prefix": "brecs"},
        },
    )
    settings = _with_database(settings, await databases.create_migrated(settings))
    site = Site(settings)
    try:
        started = time.perf_counter()
        await prepare_demo(site)
        await rebuild_all(site)
        if semantic(site) is not None:
            from mercato.plugins.semantic_recommendations.embeddings import KINDS, embed_all

            for kind in KINDS:
                await embed_all(site, kind)
        seeded = time.perf_counter() - started

        recommenders: dict[str, Any] = {"built-in": SkillRecommender(site)}
        if (semantic_one := semantic(site)) is not None:
            recommenders["semantic"] = semantic_one
        recommenders["random (floor)"] = RandomRanking(site)

        async with site.db.reading() as session:
            hires = (
                await session.execute(
                    select(Proposal.project_id, Proposal.developer_id).where(
                        Proposal.contract_id.is_not(None)
                    )
                )
            ).all()
            skills_of: dict[uuid.UUID, set[str]] = {}
            for user_id, slug in await session.execute(select(UserSkill.user_id, UserSkill.skill_slug)):
                skills_of.setdefault(user_id, set()).add(slug)
            project_skills = {
                i: set(s or []) for i, s in await session.execute(select(Project.id, Project.skills))
            }
            open_projects = await session.scalar(
                select(text("count(*)")).select_from(Project).where(Project.status == ProjectStatus.OPEN)
            )
            assert hires, "the demo data has no hired proposals"
            lines = [
                f"{len(hires)} contracts from proposals; {open_projects} open projects; "
                f"seeding, index and embeddings {seeded:.1f} s",
                "relevant: shares >= min(2, |H|) skills with H, the hired developer's skills; "
                "precision@10 = relevant / 10",
                f"{'recommender':<16} {'developers for project':>24} {'projects for developer':>24}",
            ]
            for name, recommender in recommenders.items():
                dev_precision, project_precision = [], []
                for project_id, developer_id in hires:
                    hired = skills_of.get(developer_id, set())
                    found = await recommender.developers_for_project(session, project_id, K)
                    dev_precision.append(sum(relevant(skills_of.get(s.id, set()), hired) for s in found) / K)
                    found = await recommender.projects_for_developer(session, developer_id, K)
                    project_precision.append(
                        sum(relevant(project_skills.get(s.id, set()), hired) for s in found) / K
                    )
                lines.append(
                    f"{name:<16} {sum(dev_precision) / len(dev_precision):>24.3f} "
                    f"{sum(project_precision) / len(project_precision):>24.3f}"
                )
        report("recommendations: precision@10 on the demo data", lines)
    finally:
        await site.db.dispose()
        await _delete_streams(nats_url, {settings.events.stream})


async def timed(fn: Callable[[], Awaitable[Any]], times: int) -> list[float]:
    values = []
    for _ in range(times):
        started = time.perf_counter()
        await fn()
        values.append(time.perf_counter() - started)
    return values


def summary(values: list[float]) -> str:
    return f"p50 {ms(percentile(values, 50))}, p95 {ms(percentile(values, 95))}, max {ms(max(values))}"


@pytest.mark.timeout(3600)
async def test_latency_of_projects_for_a_developer(
    databases: Databases, nats_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        tmp_path,
        environ={},
        overrides={
            "plugins": {"load_entry_points": False, "disabled": ["semantic_recommendations"]},
            "events": {"nats_url": nats_url, "stream": "BENCH_RECS_LAT", "subject_prefix": "breclat"},
            "worker": {"in_web": False},
            "logging": {"level": "WARNING"},
            "accounts": {**MARKET_ACCOUNTS},
        },
    )
    settings = _with_database(settings, await databases.create_migrated(settings))
    site = Site(settings)
    try:
        data = await seed_marketplace(site, developers=DEVELOPERS, clients=CLIENTS, projects=PROJECTS)
        started = time.perf_counter()
        rows = await rebuild_all(site)
        indexed = time.perf_counter() - started
        if ON_POSTGRESQL:
            async with site.db.transaction() as session:
                await session.execute(text("ANALYZE"))
    finally:
        await site.db.dispose()

    site = Site(settings)
    await site.startup(background=False)
    rng = random.Random(11)
    try:
        transport = httpx.ASGITransport(app=create_app(site=site))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            tokens: list[tuple[uuid.UUID, str]] = []
            for n in range(DEVELOPERS_ASKING):
                track = rng.choice(TRACKS)
                response = await client.post(
                    "/api/v1/auth/register",
                    json={
                        "email": f"asker{n}@bench.example",
                        "password": "correct horse battery staple",
                        "display_name": f"Asker {n}",
                        "roles": ["developer"],
                    },
                )
                assert response.status_code == 201, response.text
                token = response.json()["access_token"]
                me = await client.patch(
                    "/api/v1/me",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "skills": list(track.skills[:4]),
                        "hourly_rate": {"amount": 6000, "currency": "USD"},
                    },
                )
                assert me.status_code == 200, me.text
                tokens.append((uuid.UUID(me.json()["id"]), token))

            recommender = site.plugins.recommender(site)
            turn = iter(range(10**9))

            async def http_call() -> None:
                _, token = tokens[next(turn) % len(tokens)]
                response = await client.get(
                    "/api/v1/recommendations/projects", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 200, response.text
                assert len(response.json()["items"]) == K

            async def direct() -> None:
                developer_id, _ = tokens[next(turn) % len(tokens)]
                async with site.db.reading() as session:
                    assert len(await recommender.projects_for_developer(session, developer_id, K)) == K

            async def baseline() -> None:
                async with site.db.reading() as session:
                    found = (
                        await session.scalars(
                            select(Project.id)
                            .where(Project.status == ProjectStatus.OPEN, Project.visibility == "public")
                            .order_by(Project.published_at.desc())
                            .limit(K)
                        )
                    ).all()
                    assert len(found) == K

            await timed(http_call, WARMUP_QUERIES)
            await timed(direct, WARMUP_QUERIES)
            await timed(baseline, WARMUP_QUERIES)
            api = await timed(http_call, QUERIES)
            alone = await timed(direct, QUERIES)
            bare = await timed(baseline, QUERIES)
        report(
            f"recommendations: projects for a developer, {PROJECTS:,} open projects",
            [
                f"candidate index: {rows:,} rows built in {indexed:.1f} s; seeding: "
                + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in data.timings.items()),
                f"GET /api/v1/recommendations/projects  {summary(api)}",
                f"recommender alone                     {summary(alone)}",
                f"baseline: indexed SELECT of 10 newest {summary(bare)}",
                f"ratio p95 API / baseline: {percentile(api, 95) / percentile(bare, 95):.1f}x; "
                f"target p95 < {ms(TARGET_P95_SECONDS)}: "
                f"{'met' if percentile(api, 95) < TARGET_P95_SECONDS else 'NOT met'}",
            ],
        )
    finally:
        await site.shutdown()
        await _delete_streams(nats_url, {settings.events.stream})
