"""A big, deterministic marketplace for the marketplace benchmark, written in bulk.

Rows go straight into the tables with Core ``INSERT``s of a few thousand rows each (SQLAlchemy
batches them into multi-row statements): no services, no events, so no event handler races
the seeding and nothing lands in the outbox. The catalogues (skills, categories) are synced
first, as a site does on start. The search index is then built by the path
``mercato search reindex`` takes (:func:`reindex_kind`: the domains' document builders and the
site's search backend), in batches of :data:`INDEX_BATCH`.

Projects follow the demo's tracks (:data:`mercato.core.demo.TRACKS`): a track gives each
project its category, skills and "thing", so a skill and a category of one project also
match many others. Descriptions are sentences of words drawn with Zipf-like weights from
:data:`WORDS`, so some words are in most projects and others in few.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from sqlalchemy import Table, insert, select, text

from mercato.core.accounts.models import Profile, Skill, User, UserSkill
from mercato.core.accounts.profiles import sync_skills
from mercato.core.catalog.models import Category
from mercato.core.catalog.services import sync_categories
from mercato.core.demo import TRACKS, Track
from mercato.core.markdown import render_markdown
from mercato.core.projects.models import Project
from mercato.core.site import Site
from mercato.plugins.search_sql.commands import reindex_kind

SEED = 20_260_101
CHUNK = 5_000
"""Rows per ``INSERT`` call."""
INDEX_BATCH = 2_000
"""Ids per document-building batch when filling the search index."""
NOW = datetime(2026, 1, 1, tzinfo=UTC)

WORDS = (
    "api", "integration", "dashboard", "payments", "checkout", "billing", "invoices", "subscription",
    "users", "accounts", "admin", "reports", "analytics", "export", "import", "sync", "offline",
    "mobile", "responsive", "accessible", "secure", "fast", "scalable", "legacy", "migration",
    "refactor", "tests", "coverage", "deploy", "pipeline", "monitoring", "alerts", "logging", "metrics",
    "performance", "caching", "search", "filters", "maps", "geolocation", "notifications", "email",
    "chat", "realtime", "websocket", "queue", "worker", "scheduler", "cron", "backup", "restore",
    "database", "schema", "queries", "indexes", "frontend", "backend", "fullstack", "design",
    "prototype", "wireframes", "branding", "onboarding", "signup", "login", "oauth", "permissions",
    "roles", "audit", "compliance", "gdpr", "privacy", "encryption", "tokens", "webhooks", "stripe",
    "paypal", "shopify", "wordpress", "plugin", "theme", "marketplace", "booking", "calendar",
    "inventory", "orders", "shipping", "warehouse", "crm", "erp", "salesforce", "hubspot", "zapier",
    "automation", "scraping", "crawler", "parser", "charts", "pdf", "invoices", "translations",
    "localization", "multilingual", "documentation", "review", "mentoring", "startup", "agency",
    "enterprise", "nonprofit", "clinic", "restaurant", "fitness", "education", "fintech", "insurance",
    "logistics", "retail", "travel", "realestate", "healthcare", "gaming", "media", "music", "video",
    "streaming", "upload", "images", "thumbnails", "storage", "cdn", "serverless", "lambda",
    "containers", "cluster", "microservices", "monolith",
)
"""Description vocabulary, most frequent first (weights ~ 1/rank)."""
FILLER = (
    "we", "need", "a", "the", "for", "with", "and", "our", "to", "of", "in", "on", "that", "is", "are",
    "this", "will", "be",
)
NOT_QUERIED = {*FILLER, "looking", "help"}
"""Words every project has (the opening sentence): never drawn as a query."""
VERBS = ("Build", "Design", "Ship", "Improve", "Rescue", "Extend", "Automate", "Audit")
SYLLABLES = ("ka", "zu", "mi", "ro", "tel", "van", "dor", "qui", "lex", "pa", "nor", "sy", "fen", "ix")
DURATIONS = ("less_than_week", "1_4_weeks", "1_3_months", "3_6_months")
LEVELS = ("entry", "intermediate", "expert")
ZONES = ("Europe/Lisbon", "Europe/Berlin", "America/New_York", "America/Sao_Paulo", "Asia/Kolkata")


@dataclass
class SeededProject:
    """What a query needs to know of one project to be sure to find something."""

    title: str
    words: list[str]
    skills: list[str]
    category: str
    parent: str | None


@dataclass
class Marketplace:
    """What was seeded, and how long each step took (seconds)."""

    developers: int
    clients: int
    projects: list[SeededProject] = field(default_factory=list)
    newest_titles: list[str] = field(default_factory=list)
    """Titles of the newest projects, newest first (the top of the browse page)."""
    timings: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def _company(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


class _Words:
    """Zipf-like draws from :data:`WORDS` (cumulative weights computed once)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cum = list(accumulate(1.0 / (rank + 1) for rank in range(len(WORDS))))

    def sentence(self) -> str:
        n = self.rng.randint(7, 13)
        words = self.rng.choices(WORDS, cum_weights=self.cum, k=n)
        mixed = [w if self.rng.random() < 0.6 else f"{self.rng.choice(FILLER)} {w}" for w in words]
        return " ".join(mixed).capitalize() + "."


def _chunks(rows: Sequence[dict[str, Any]], size: int = CHUNK) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


async def _insert(site: Site, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    table: Table = model.__table__
    async with site.db.transaction() as session:
        for chunk in _chunks(rows):
            await session.execute(insert(table), list(chunk))


async def seed_marketplace(site: Site, *, developers: int, clients: int, projects: int) -> Marketplace:
    """Fill ``site``'s (migrated, empty) database and its search index; see the module docstring."""
    rng = random.Random(SEED)
    words = _Words(rng)
    market = Marketplace(developers=developers, clients=clients)
    started = time.perf_counter()

    async with site.db.transaction() as session:
        await sync_skills(session)
        await sync_categories(session)
    async with site.db.reading() as session:
        known_skills = set((await session.scalars(select(Skill.slug))).all())
        parents = dict((await session.execute(select(Category.slug, Category.parent_slug))).all())
    tracks = [Track(tuple(c for c in t.categories if c in parents),
                    tuple(s for s in t.skills if s in known_skills), t.headline, t.things) for t in TRACKS]
    tracks = [t for t in tracks if t.categories and len(t.skills) >= 3]

    users: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    user_skills: list[dict[str, Any]] = []
    client_ids: list[uuid.UUID] = []
    for index in range(developers + clients):
        is_dev = index < developers
        user_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        created = NOW - timedelta(days=rng.uniform(30, 900))
        email = f"{'dev' if is_dev else 'client'}{index}@bench.mercato.dev"
        name = f"{_company(rng)} {_company(rng)}"
        users.append({
            "id": user_id, "email": email, "email_key": email, "display_name": name,
            "is_client": not is_dev, "is_developer": is_dev, "is_admin": False, "status": "active",
            "email_verified_at": created, "password_hash": None, "password_changed_at": None,
            "last_login_at": None, "suspended_reason": None, "deleted_at": None,
            "created_at": created, "updated_at": created,
        })
        profile: dict[str, Any] = {
            "user_id": user_id, "headline": "", "bio": "", "hourly_rate": None, "currency": "USD",
            "location": "", "timezone": rng.choice(ZONES), "languages": ["English"],
            "availability": "available", "github_url": "", "website_url": "", "avatar_key": None,
            "created_at": created, "updated_at": created,
        }
        if is_dev:
            track = rng.choice(tracks)
            skills = rng.sample(track.skills, k=rng.randint(3, len(track.skills)))
            profile.update(headline=f"{track.headline} · {', '.join(skills[:3])}"[:120],
                           bio=" ".join(words.sentence() for _ in range(3)),
                           hourly_rate=rng.randrange(3000, 20000, 500))
            user_skills += [{"user_id": user_id, "skill_slug": slug, "position": position}
                            for position, slug in enumerate(skills)]
        else:
            profile["headline"] = f"Hiring for {_company(rng)}"
            client_ids.append(user_id)
        profiles.append(profile)

    project_rows: list[dict[str, Any]] = []
    for _ in range(projects):
        track = rng.choice(tracks)
        thing = rng.choice(track.things)
        title = f"{rng.choice(VERBS)} {thing} for {_company(rng)}"[:120]
        description = " ".join([f"We are looking for help with {thing}.",
                                *(words.sentence() for _ in range(rng.randint(3, 6)))])
        category = rng.choice(track.categories)
        skills = rng.sample(track.skills, k=3)
        hourly = rng.random() < 0.25
        low = rng.randrange(3000, 9000, 500) if hourly else rng.randrange(50_000, 800_000, 10_000)
        published = NOW - timedelta(seconds=rng.uniform(0, 365 * 86400))
        project_rows.append({
            "id": uuid.UUID(int=rng.getrandbits(128), version=4), "client_id": rng.choice(client_ids),
            "title": title, "description": description, "category_slug": category, "skills": skills,
            "description_html": str(render_markdown(description)),  # as the model stores it
            "budget_type": "hourly" if hourly else "fixed", "budget_min": low,
            "budget_max": low * rng.choice((1, 2, 3)), "currency": "USD",
            "duration": rng.choice(DURATIONS), "experience_level": rng.choice(LEVELS),
            "visibility": "public", "screening_questions": [], "status": "open",
            "published_at": published, "hired_at": None, "ended_at": None, "proposal_count": 0,
            "created_at": published - timedelta(hours=1), "updated_at": published,
        })
        market.projects.append(SeededProject(
            title=title, skills=skills, category=category, parent=parents.get(category),
            words=sorted({w.lower() for w in f"{title} {description}".replace(".", " ").split()
                          if w.isalpha() and len(w) >= 4 and w.lower() not in NOT_QUERIED}),
        ))
    newest = sorted(project_rows, key=lambda row: (row["published_at"], row["id"]), reverse=True)
    market.newest_titles = [row["title"] for row in newest[:20]]
    market.timings["generate rows (Python)"] = time.perf_counter() - started

    step = time.perf_counter()
    await _insert(site, User, users)
    await _insert(site, Profile, profiles)
    await _insert(site, UserSkill, user_skills)
    await _insert(site, Project, project_rows)
    market.timings["insert rows"] = time.perf_counter() - step
    market.rows = {"users": len(users), "profiles": len(profiles), "user_skills": len(user_skills),
                   "projects": len(project_rows)}

    backend = site.plugins.search_backend(site)
    for kind in ("project", "developer"):
        step = time.perf_counter()
        # The command's own loop (it draws a progress bar on standard error).
        market.rows[f"{kind} documents"] = await reindex_kind(site, backend, kind, batch=INDEX_BATCH)
        market.timings[f"index {kind} documents"] = time.perf_counter() - step

    if not site.db.sqlite:
        step = time.perf_counter()
        async with site.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
        market.timings["VACUUM ANALYZE"] = time.perf_counter() - step
    market.timings["total"] = time.perf_counter() - started
    return market
