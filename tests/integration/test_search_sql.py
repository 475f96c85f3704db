"""The built-in ``search_sql`` backend on whatever database the fixtures give (SQLite FTS5
by default, PostgreSQL full text + pg_trgm with ``MERCATO_TEST_DATABASE_URL``).

Documents are indexed straight through the backend for ranking, filters, sorts, cursors,
facets and hostile input; the event handlers are exercised through the accounts API, and
``mercato search reindex`` through the real command.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from mercato import hookimpl
from mercato.core.accounts.models import Profile, User, UserSkill, UserStatus
from mercato.core.accounts.profiles import sync_skills
from mercato.core.plugins import build_plugin_manager
from mercato.core.search import SearchBackend, SearchDocument, SearchQuery, SearchResults
from mercato.core.settings import Settings, load_settings
from mercato.core.site import Site
from mercato.plugins.search_sql import SqlSearchBackend
from mercato.plugins.search_sql.backend import FTS, _encode
from mercato.plugins.search_sql.documents import all_ids, developer_documents
from mercato.plugins.search_sql.handlers import refresh_documents
from mercato.plugins.search_sql.models import SearchEntry
from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_api import API, PASSWORD, Apps, bearer, register
from tests.integration.test_cli import error_lines, init_site, mercato, mercato_with_input

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ids_of(*names: str) -> list[uuid.UUID]:
    return [ID[name] for name in names]


def names_of(ids: list[uuid.UUID]) -> list[str]:
    return [NAME[i] for i in ids]


def project(name: str, title: str, text: str, skills: list[str], *, category: str | None,
            price: tuple[int, int] | None, hourly: bool = False, currency: str = "USD",
            day: int) -> SearchDocument:
    return SearchDocument(
        kind="project", id=ID[name], title=title, text=text, skills=skills, category=category,
        currency=currency if price else None, price_min=price[0] if price else None,
        price_max=price[1] if price else None, hourly=hourly, created_at=T0 + timedelta(days=day),
        owner_id=uuid.uuid5(uuid.NAMESPACE_DNS, "owner"),
    )


NAMES = ["pipeline", "django", "mobile", "rust", "wordpress", "churn", "cafe", "k8s",
         "svc_logo", "svc_api", "svc_audit", "dev_ada"]
ID = {name: uuid.uuid5(uuid.NAMESPACE_URL, f"search-test/{name}") for name in NAMES}
NAME = {v: k for k, v in ID.items()}

PROJECTS = [
    project("pipeline", "Python data pipeline for analytics", "We need ETL jobs with Airflow and pandas.",
            ["python", "apache-airflow", "pandas"], category="data", price=(500_000, 1_000_000), day=1),
    project("django", "Django REST API for a marketplace",
            "Build the endpoints in Python, with PostgreSQL behind them.",
            ["python", "django", "postgresql"], category="web-backend", price=(300_000, 600_000), day=2),
    project("mobile", "React Native mobile app", "An iOS and Android app; the backend is Node.js.",
            ["react-native", "javascript"], category="mobile", price=(800_000, 1_200_000),
            currency="EUR", day=3),
    project("rust", "Rust CLI tool", "A command line tool, with some Python bindings.",
            ["rust"], category="tools", price=(200_000, 300_000), day=4),
    project("wordpress", "Fix a WordPress theme", "PHP and CSS fixes on a small site.",
            ["php", "wordpress"], category="web-frontend", price=(3_000, 5_000), hourly=True, day=5),
    project("churn", "Machine learning model for churn", "scikit-learn, python and SQL on our data.",
            ["python", "machine-learning"], category="data", price=(8_000, 12_000), hourly=True, day=6),
    project("cafe", "Café ordering website", "A simple site for our cafe, and a résumé page.",
            ["html", "css"], category="web-frontend", price=None, day=7),
    project("k8s", "Go microservices on Kubernetes", "Split the monolith; Docker images and Helm charts.",
            ["go", "kubernetes", "docker"], category="devops", price=(1_000_000, 2_000_000), day=8),
]
SERVICES = [
    SearchDocument(kind="service", id=ID["svc_logo"], title="I will design your logo", text="Vector logo.",
                   skills=["illustrator"], category="design", currency="USD", price_min=5_000,
                   price_max=20_000, delivery_days=2, rating=4.9, created_at=T0),
    SearchDocument(kind="service", id=ID["svc_api"], title="I will build a Python API", text="FastAPI.",
                   skills=["python"], category="web-backend", currency="USD", price_min=50_000,
                   price_max=150_000, delivery_days=7, rating=4.2, created_at=T0 + timedelta(days=1)),
    SearchDocument(kind="service", id=ID["svc_audit"], title="Security audit of your Python app",
                   text="OWASP.", skills=["python", "security"], category="security", currency="USD",
                   price_min=200_000, price_max=200_000, delivery_days=14, rating=None,
                   created_at=T0 + timedelta(days=2)),
]
DEVELOPERS = [
    SearchDocument(kind="developer", id=ID["dev_ada"], title="Ada Lovelace", text="Python and Django.",
                   skills=["python", "django"], currency="EUR", price_min=9_000, price_max=9_000,
                   hourly=True, created_at=T0),
]
ALL = [*PROJECTS, *SERVICES, *DEVELOPERS]

HOSTILE = ["c++", '"', '"foo', "AND", "AND OR NOT", "NEAR(a b)", "*", "**", "-", "^python", "python*",
           "'; drop table search_documents; --", "title:python", "a:b:c", "(", ")", "{x}", "\\", "%", "_",
           "x" * 5000, " ".join(["python"] * 200), "🐍 python 🚀", "🐍", "py\x00thon", "\x00", "\x01\x02",
           "\ud800", "ñandú", "日本語", "'", "''", "&|!", ":*", "a & b | !c"]


@pytest.fixture
async def site(migrated_settings: Settings) -> AsyncIterator[Site]:
    site = Site(migrated_settings)
    try:
        yield site
    finally:
        await site.db.dispose()


@pytest.fixture
async def backend(site: Site) -> SqlSearchBackend:
    backend = site.plugins.search_backend(site)
    assert isinstance(backend, SqlSearchBackend)
    await backend.index(ALL)
    return backend


async def search(backend: SqlSearchBackend, **query: Any) -> SearchResults:
    return await backend.search(SearchQuery(**{"kind": "project", "limit": 100, **query}))


async def found(backend: SqlSearchBackend, **query: Any) -> list[str]:
    return names_of((await search(backend, **query)).ids)


def is_postgresql(site: Site) -> bool:
    return not site.db.sqlite


# ---------------------------------------------------------------------------
# The hook
# ---------------------------------------------------------------------------


async def test_backend_is_one_per_site_and_a_plugin_answering_first_replaces_it(
    make_settings: MakeSettings,
) -> None:
    class ExternalEngine:
        async def index(self, documents: list[SearchDocument]) -> None: ...
        async def remove(self, kind: Any, ids: list[uuid.UUID]) -> None: ...
        async def clear(self, kind: Any = None) -> None: ...
        async def search(self, query: SearchQuery) -> SearchResults:
            return SearchResults(ids=[])

    engine = ExternalEngine()

    class ExternalPlugin:
        @hookimpl
        def get_search_backend(self, site: Site) -> SearchBackend:
            return engine

    settings = make_settings()
    builtin = Site(settings)
    other = Site(make_settings())
    replaced = Site(settings, pm=build_plugin_manager(settings, extra=[("external", ExternalPlugin())]))
    try:
        first = builtin.plugins.search_backend(builtin)
        assert isinstance(first, SqlSearchBackend)
        assert isinstance(first, SearchBackend)
        assert builtin.plugins.search_backend(builtin) is first
        assert other.plugins.search_backend(other) is not first
        assert replaced.plugins.search_backend(replaced) is engine
    finally:
        for s in (builtin, other, replaced):
            await s.db.dispose()


# ---------------------------------------------------------------------------
# Relevance, prefixes, typos
# ---------------------------------------------------------------------------


async def test_a_title_match_beats_a_body_match(backend: SqlSearchBackend) -> None:
    results = await found(backend, q="python")
    assert set(results) == {"pipeline", "django", "rust", "churn"}
    assert results[0] == "pipeline"  # "Python" in the title
    assert results.index("pipeline") < results.index("rust")  # "Python" only in the text
    services = names_of((await search(backend, kind="service", q="python")).ids)
    assert set(services) == {"svc_api", "svc_audit"}


async def test_every_term_must_match_and_the_last_is_a_prefix(backend: SqlSearchBackend) -> None:
    assert await found(backend, q="djan") == ["django"]
    assert await found(backend, q="kube") == ["k8s"]
    assert await found(backend, q="react nat") == ["mobile"]
    assert await found(backend, q="Python pipe") == ["pipeline"]
    assert await found(backend, q="python kubernetes") == []  # also no typo of both (PostgreSQL)
    assert await found(backend, q="DJANGO") == ["django"]  # case does not matter
    assert await found(backend, q="airflow") == ["pipeline"]  # a skill slug's word
    assert "cafe" in await found(backend, q="cafe")
    if backend.sqlite:  # diacritics are folded (PostgreSQL's `simple` configuration keeps them)
        assert await found(backend, q="resume") == ["cafe"]
    assert await found(backend, q="résumé") == ["cafe"]


async def test_a_typo_finds_titles_on_postgresql(backend: SqlSearchBackend, site: Site) -> None:
    if not is_postgresql(site):
        pytest.skip("SQLite FTS5 has no typo tolerance (documented)")
    typo = await found(backend, q="pyhton")
    assert typo
    assert typo[0] == "pipeline"
    assert "django" not in typo  # "Python" only in its text, not its title
    assert (await search(backend, q="pyhton")).total == len(typo)
    assert await found(backend, q="kubernets") == ["k8s"]
    assert await found(backend, q="go kubernets") == ["k8s"]  # short terms take no part
    assert await found(backend, q="analytcs pyhton") == ["pipeline"]
    assert await found(backend, q="zebra") == []
    # Only when nothing matches: "rust" does not pull in "Trust" or "REST".
    trust = SearchDocument(kind="project", id=uuid.uuid4(), title="Trust and safety review", text="",
                           created_at=T0 + timedelta(days=30))
    await backend.index([trust])
    assert (await search(backend, q="rust")).ids == [ID["rust"]]
    assert (await search(backend, q="trst")).ids == [trust.id]


async def test_empty_query_browses_newest_first(backend: SqlSearchBackend) -> None:
    newest = [doc.id for doc in sorted(PROJECTS, key=lambda d: d.created_at, reverse=True)]
    assert (await search(backend)).ids == newest
    assert (await search(backend, q="   ")).ids == newest
    assert (await search(backend, q='" * -')).ids == newest  # no usable term: a browse too
    assert (await search(backend)).total == len(PROJECTS)


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ({"skills": ["python"]}, {"pipeline", "django", "churn"}),
    ({"skills": ["python", "django"]}, {"django"}),
    ({"skills": ["Python", "DJANGO"]}, {"django"}),
    ({"skills": ["python", "rust"]}, set()),
    ({"skills": ["pyth"]}, set()),  # skills match whole slugs only
    ({"skills": ["react-native"]}, {"mobile"}),
    ({"skills": ["%"]}, set()),
    ({"categories": ["data"]}, {"pipeline", "churn"}),
    ({"categories": ["data", "mobile"]}, {"pipeline", "churn", "mobile"}),
    ({"currency": "EUR"}, {"mobile"}),
    ({"currency": "usd"}, {"pipeline", "django", "rust", "wordpress", "churn", "k8s"}),
    ({"price_min": 900_000}, {"pipeline", "mobile", "k8s"}),
    ({"price_max": 250_000}, {"rust", "wordpress", "churn"}),
    ({"price_min": 250_000, "price_max": 550_000}, {"pipeline", "django", "rust"}),
    ({"hourly": True}, {"wordpress", "churn"}),
    ({"hourly": False}, {"pipeline", "django", "mobile", "rust", "cafe", "k8s"}),
    ({"q": "python", "categories": ["data"], "hourly": True}, {"churn"}),
    ({"q": "python", "skills": ["python"], "price_min": 400_000, "currency": "USD"}, {"pipeline", "django"}),
    ({"skills": ["python"], "categories": ["web-backend", "data"], "hourly": False}, {"pipeline", "django"}),
])
async def test_filters(backend: SqlSearchBackend, query: dict[str, Any], expected: set[str]) -> None:
    results = await search(backend, **query)
    assert set(names_of(results.ids)) == expected
    assert results.total == len(expected)


async def test_service_filters(backend: SqlSearchBackend) -> None:
    assert set(await found(backend, kind="service", max_delivery_days=7)) == {"svc_logo", "svc_api"}
    assert set(await found(backend, kind="service", min_rating=4.5)) == {"svc_logo"}
    assert set(await found(backend, kind="service", min_rating=4.0, max_delivery_days=5)) == {"svc_logo"}
    assert set(await found(backend, kind="service", q="python", max_delivery_days=10)) == {"svc_api"}
    assert await found(backend, kind="developer", skills=["django"], hourly=True) == ["dev_ada"]
    assert await found(backend, kind="developer", q="ada") == ["dev_ada"]


# ---------------------------------------------------------------------------
# Sorts and cursors
# ---------------------------------------------------------------------------


async def test_sorts(backend: SqlSearchBackend) -> None:
    assert await found(backend, sort="price_asc") == [
        "wordpress", "churn", "rust", "django", "pipeline", "mobile", "k8s", "cafe"]  # no price: last
    assert await found(backend, sort="price_desc") == [
        "k8s", "mobile", "pipeline", "django", "rust", "churn", "wordpress", "cafe"]
    assert await found(backend, sort="newest") == [
        "k8s", "cafe", "churn", "wordpress", "rust", "mobile", "django", "pipeline"]
    assert await found(backend, q="python", sort="newest") == ["churn", "rust", "django", "pipeline"]
    assert await found(backend, q="python", sort="price_asc") == ["churn", "rust", "django", "pipeline"]


@pytest.mark.parametrize("sort", ["relevance", "newest", "price_asc", "price_desc"])
@pytest.mark.parametrize("q", ["", "python", "a", "pyhton"])
async def test_a_cursor_walk_sees_every_result_once_in_order(
    backend: SqlSearchBackend, sort: str, q: str,
) -> None:
    extra = [SearchDocument(kind="project", id=uuid.uuid4(), title=f"Python job {i}", text="python",
                            skills=["python"], price_min=1000 * (i % 3), price_max=1000 * (i % 3),
                            created_at=T0 + timedelta(days=i % 4)) for i in range(23)]
    await backend.index(extra)  # ties on every sort key: the id breaks them
    everything = await search(backend, q=q, sort=sort)
    assert everything.next_cursor is None
    for limit in (1, 3, 7):
        walked: list[uuid.UUID] = []
        cursor = None
        pages = 0
        while True:
            page = await search(backend, q=q, sort=sort, limit=limit, cursor=cursor)
            assert page.total == everything.total
            assert len(page.ids) <= limit
            walked += page.ids
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
            assert len(page.ids) == limit
        assert walked == everything.ids
        assert len(set(walked)) == len(walked)
        assert pages == max(1, -(-len(walked) // limit))


@pytest.mark.parametrize("cursor", [
    "garbage!", "e30", "WzEsMl0", _encode("n", "x", [1, 2]), _encode("pa", "x", [T0, uuid.uuid4()]),
    _encode("n", "?", [T0, uuid.uuid4()]), _encode("n", "x", ["yesterday", str(uuid.uuid4())]),
    _encode("n", "x", [T0.isoformat(), "not-a-uuid"]), _encode("n", "x", [T0, uuid.uuid4(), 3]),
    _encode("n", "x", ["2026-01-01T00:00:00", str(uuid.uuid4())]), "x" * 600,
])
async def test_a_bad_cursor_is_a_value_error(backend: SqlSearchBackend, cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await search(backend, cursor=cursor)


async def test_a_cursor_of_another_sort_is_a_value_error(backend: SqlSearchBackend) -> None:
    page = await search(backend, q="python", limit=1)
    assert page.next_cursor is not None
    with pytest.raises(ValueError, match="cursor"):
        await search(backend, q="python", limit=1, sort="price_asc", cursor=page.next_cursor)
    with pytest.raises(ValueError, match="cursor"):
        await search(backend, limit=1, cursor=page.next_cursor)  # a browse orders by date


# ---------------------------------------------------------------------------
# Facets
# ---------------------------------------------------------------------------


def expected_facets(documents: list[SearchDocument]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for doc in documents:
        for skill in doc.skills:
            counts[skill] = counts.get(skill, 0) + 1
    return counts


async def test_skill_facets_count_the_filtered_results(backend: SqlSearchBackend) -> None:
    assert (await search(backend)).skill_facets == {}  # only when asked
    everything = await search(backend, facets=True)
    assert everything.skill_facets == expected_facets(PROJECTS)
    assert next(iter(everything.skill_facets)) == "python"  # biggest first
    data = await search(backend, facets=True, categories=["data"], limit=1)
    assert data.skill_facets == {"python": 2, "apache-airflow": 1, "pandas": 1, "machine-learning": 1}
    texty = await search(backend, facets=True, q="python")
    assert texty.skill_facets == expected_facets([d for d in PROJECTS if NAME[d.id] in
                                                  {"pipeline", "django", "rust", "churn"}])
    none = await search(backend, facets=True, q="nothing-matches-this")
    assert none.skill_facets == {}
    assert none.total == 0



@pytest.mark.parametrize("q", ["", "python"])
async def test_a_page_past_the_end_still_counts_what_is_left(backend: SqlSearchBackend, q: str) -> None:
    # Each page's rows carry the count; a page left empty (what it followed was removed
    # meanwhile) counts in a statement of its own. (Newest first: removing documents moves
    # SQLite's relevance scores.)
    first = await search(backend, q=q, sort="newest", limit=2)
    assert first.next_cursor is not None
    everything = await search(backend, q=q, sort="newest")
    await backend.remove("project", everything.ids[2:])
    second = await search(backend, q=q, sort="newest", limit=2, cursor=first.next_cursor)
    assert second.ids == []
    assert second.total == 2
    assert second.next_cursor is None

async def test_at_most_thirty_facets(backend: SqlSearchBackend) -> None:
    many = [SearchDocument(kind="service", id=uuid.uuid4(), title=f"Service {i}", text="", created_at=T0,
                           skills=[f"skill-{j:02d}" for j in range(i + 1)]) for i in range(40)]
    await backend.index(many)
    facets = (await search(backend, kind="service", facets=True)).skill_facets
    assert len(facets) == 30
    assert facets["skill-00"] == 40
    assert list(facets.values()) == sorted(facets.values(), reverse=True)


# ---------------------------------------------------------------------------
# Hostile input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("q", HOSTILE)
async def test_hostile_queries_never_error(backend: SqlSearchBackend, q: str) -> None:
    for sort in ("relevance", "newest", "price_desc"):
        results = await search(backend, q=q, sort=sort, facets=True, skills=[q[:64]] if q.strip() else [])
        assert isinstance(results, SearchResults)
        walked = await search(backend, q=q, sort=sort, limit=1)
        if walked.next_cursor:
            await search(backend, q=q, sort=sort, limit=1, cursor=walked.next_cursor)
    assert (await search(backend)).total == len(PROJECTS)  # nothing was dropped or changed


async def test_hostile_queries_still_find_their_words(backend: SqlSearchBackend) -> None:
    python = await found(backend, q="python")
    for q in ("🐍 python 🚀", "python*", '"python"', "(python)", "^python", "PYTHON!", "python -"):
        assert await found(backend, q=q) == python, q
    assert "pipeline" in await found(backend, q="AND")  # the word "and", not an operator
    assert await found(backend, q="NOT") == []


async def test_hostile_documents_are_stored(backend: SqlSearchBackend) -> None:
    odd = SearchDocument(kind="project", id=uuid.uuid4(), title="Nul\x00 title 🐍 \ud800 'quoted' \"too\"",
                         text="AND OR NOT NEAR( * ^ \x00 '; drop table search_documents; --",
                         skills=["c++", " Weird Skill ", "%"], category="x'y", created_at=T0)
    await backend.index([odd])
    assert (await search(backend, q="quoted")).ids == [odd.id]
    assert (await search(backend, q="drop table")).ids == [odd.id]
    assert (await search(backend, skills=["weird-skill"])).ids == [odd.id]
    assert (await search(backend, skills=["%"])).ids == [odd.id]
    assert (await search(backend, categories=["x'y"])).ids == [odd.id]


# ---------------------------------------------------------------------------
# Writing: remove, clear, re-index
# ---------------------------------------------------------------------------


async def fts_rows(site: Site) -> int | None:
    if not site.db.sqlite:
        return None
    async with site.db.reading() as session:
        return await session.scalar(select(func.count()).select_from(FTS))


async def document_rows(site: Site) -> int:
    async with site.db.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(SearchEntry)) or 0)


async def test_remove_and_clear(backend: SqlSearchBackend, site: Site) -> None:
    await backend.remove("project", [*ids_of("pipeline", "django"), uuid.uuid4()])
    await backend.remove("project", [])
    assert await found(backend, q="pipeline") == []
    assert set(await found(backend, q="python")) == {"rust", "churn"}
    await backend.remove("service", ids_of("pipeline"))  # another kind: nothing happens
    assert await document_rows(site) == len(ALL) - 2
    assert await fts_rows(site) in (None, len(ALL) - 2)

    await backend.clear("service")
    assert (await search(backend, kind="service")).ids == []
    assert len((await search(backend)).ids) == len(PROJECTS) - 2
    assert await fts_rows(site) in (None, len(ALL) - 2 - len(SERVICES))

    await backend.clear()
    assert await document_rows(site) == 0
    assert await fts_rows(site) in (None, 0)
    assert (await search(backend, kind="developer", q="ada")).ids == []
    await backend.index(ALL)  # and it fills again
    assert (await search(backend)).total == len(PROJECTS)


async def test_indexing_again_replaces_documents(backend: SqlSearchBackend, site: Site) -> None:
    before = await search(backend, q="python", facets=True)
    await backend.index(ALL)
    await backend.index(ALL + ALL)  # a repeated id in one call: the last one wins
    again = await search(backend, q="python", facets=True)
    assert (again.ids, again.total, again.skill_facets) == (before.ids, before.total, before.skill_facets)
    assert await document_rows(site) == len(ALL)
    assert await fts_rows(site) in (None, len(ALL))

    renamed = PROJECTS[0]
    changed = SearchDocument(**{**{f: getattr(renamed, f) for f in renamed.__struct_fields__},
                                "title": "Scala streaming pipeline", "skills": ["scala"]})
    await backend.index([changed])
    assert await found(backend, q="scala") == ["pipeline"]
    assert "pipeline" not in await found(backend, q="analytics")
    assert "pipeline" not in await found(backend, skills=["python"])
    assert await fts_rows(site) in (None, len(ALL))


async def test_writes_join_a_given_transaction(backend: SqlSearchBackend, site: Site) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with site.db.transaction() as session:
            await backend.remove("project", ids_of("pipeline"), session=session)
            await backend.index([SearchDocument(kind="project", id=uuid.uuid4(), title="Zebra",
                                                text="", created_at=T0)], session=session)
            raise Boom
    assert "pipeline" in await found(backend, q="python")
    assert await found(backend, q="zebra") == []
    async with site.db.transaction() as session:
        await backend.remove("project", ids_of("pipeline"), session=session)
    assert "pipeline" not in await found(backend, q="python")


async def test_a_few_thousand_documents_answer_quickly(site: Site) -> None:
    backend = site.plugins.search_backend(site)
    words = ["python", "django", "react", "rust", "golang", "kubernetes", "postgres", "design", "audit",
             "mobile", "android", "ios", "flutter", "data", "pipeline", "ml", "security", "api", "web"]
    docs = [SearchDocument(kind="project", id=uuid.uuid4(),
                           title=f"{words[i % 19].title()} {words[(i * 7) % 19]} project {i}",
                           text=" ".join(words[(i + j) % 19] for j in range(30)),
                           skills=[words[i % 19], words[(i * 3) % 19]], category=f"c{i % 6}",
                           price_min=(i % 50) * 1000, price_max=(i % 50) * 2000, currency="USD",
                           created_at=T0 + timedelta(minutes=i)) for i in range(3000)]
    started = time.perf_counter()
    await backend.index(docs)
    indexing = time.perf_counter() - started
    timings = {}
    for name, query in {
        "browse": SearchQuery(kind="project"),
        "text": SearchQuery(kind="project", q="python django"),
        "prefix": SearchQuery(kind="project", q="kube"),
        "filtered": SearchQuery(kind="project", q="data", skills=["python"], price_min=10_000,
                                sort="price_asc", facets=True),
        "typo": SearchQuery(kind="project", q="pyhton"),
    }.items():
        started = time.perf_counter()
        results = await backend.search(query)
        timings[name] = time.perf_counter() - started
        assert results.total is not None
    print(f"\nindexed 3000 in {indexing:.2f}s;", ", ".join(f"{k} {v * 1000:.0f}ms"
                                                       for k, v in timings.items()))
    assert max(timings.values()) < 2.0


# ---------------------------------------------------------------------------
# Event handlers: developers follow their accounts
# ---------------------------------------------------------------------------


async def add_people(site: Site) -> tuple[uuid.UUID, uuid.UUID]:
    """A developer with a profile and skills, and a client; returns their ids."""
    async with site.db.transaction() as session:
        await sync_skills(session)
        dev = User(email="linus@example.com", email_key="linus@example.com", display_name="Linus T",
                   is_developer=True)
        client = User(email="cleo@example.com", email_key="cleo@example.com", display_name="Cleo",
                      is_client=True)
        session.add_all([dev, client])
        await session.flush()
        session.add_all([
            Profile(user_id=dev.id, headline="Kernel hacker", bio="I maintain *drivers*.",
                    hourly_rate=20_000, currency="EUR"),
            Profile(user_id=client.id),
            UserSkill(user_id=dev.id, skill_slug="rust", position=0),
            UserSkill(user_id=dev.id, skill_slug="python", position=1),
        ])
        return dev.id, client.id


async def test_developer_documents_are_built_from_the_rows(site: Site) -> None:
    dev_id, client_id = await add_people(site)
    async with site.db.reading() as session:
        [doc] = await developer_documents(session, [dev_id, client_id, uuid.uuid4()])
        assert await all_ids(session, "developer") == [dev_id]
    assert (doc.kind, doc.id, doc.title, doc.owner_id) == ("developer", dev_id, "Linus T", dev_id)
    assert doc.text == "Kernel hacker\nI maintain *drivers*.\nRust Python"
    assert doc.skills == ["rust", "python"]
    assert (doc.price_min, doc.price_max, doc.currency, doc.hourly) == (20_000, 20_000, "EUR", True)


async def test_handlers_write_in_the_event_transaction_or_through_another_backend(
    site: Site, migrated_settings: Settings,
) -> None:
    dev_id, client_id = await add_people(site)
    missing = uuid.uuid4()
    backend = site.plugins.search_backend(site)

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):  # the handler's transaction fails: the index is untouched
        async with site.db.transaction() as session:
            await refresh_documents(site, session, "developer", [dev_id])
            raise Rollback
    assert (await backend.search(SearchQuery(kind="developer"))).ids == []
    async with site.db.transaction() as session:
        await refresh_documents(site, session, "developer", [dev_id, client_id, missing])
    assert (await backend.search(SearchQuery(kind="developer", q="kernel", skills=["rust"]))).ids == [dev_id]

    async with site.db.transaction() as session:
        await session.execute(update(User).where(User.id == dev_id).values(status=UserStatus.SUSPENDED))
        await refresh_documents(site, session, "developer", [dev_id])
    assert (await backend.search(SearchQuery(kind="developer"))).ids == []

    calls: list[tuple[Any, ...]] = []

    class Engine:
        async def index(self, documents: list[SearchDocument]) -> None:
            calls.append(("index", [doc.id for doc in documents]))

        async def remove(self, kind: Any, ids: list[uuid.UUID]) -> None:
            calls.append(("remove", kind, ids))

        async def clear(self, kind: Any = None) -> None: ...

        async def search(self, query: SearchQuery) -> SearchResults:
            return SearchResults(ids=[])

    class EnginePlugin:
        @hookimpl
        def get_search_backend(self, site: Site) -> SearchBackend:
            return engine

    engine = Engine()
    pm = build_plugin_manager(migrated_settings, extra=[("engine", EnginePlugin())])
    other = Site(migrated_settings, pm=pm)
    try:
        async with other.db.transaction() as session:
            await session.execute(update(User).where(User.id == dev_id).values(status=UserStatus.ACTIVE))
            await refresh_documents(other, session, "developer", [dev_id, client_id, missing])
    finally:
        await other.db.dispose()
    assert calls == [("index", [dev_id]), ("remove", "developer", sorted([client_id, missing]))]



@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


async def wait_until(predicate: Any, *, timeout: float = 10.0, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_developers_are_indexed_from_their_profile_and_removed_when_deleted(apps: Apps) -> None:
    app = await apps.open()
    backend = app.site.plugins.search_backend(app.site)

    async def developer_ids(**query: Any) -> list[uuid.UUID]:
        results = await app.on_loop(backend.search, SearchQuery(kind="developer", **query))
        return results.ids

    grace = await register(app.client, "grace@example.com", name="Grace Hopper", roles=("developer",))
    await register(app.client, "carl@example.com", name="Carl Client", roles=("client",))
    grace_id = uuid.UUID(grace.id)
    await wait_until(lambda: _contains(developer_ids(q="grace"), grace_id), what="the new developer")

    response = await app.client.patch(f"{API}/me", headers=grace.auth, json={
        "skills": ["django", "postgresql"], "headline": "Compiler pioneer turned web developer",
        "hourly_rate": {"amount": 12_000, "currency": "USD"}})
    assert response.status_code == 200, response.text
    await wait_until(lambda: _contains(developer_ids(skills=["django"]), grace_id), what="her skills")
    assert await developer_ids(q="compiler pioneer") == [grace_id]
    assert await developer_ids(q="Hopp") == [grace_id]
    assert await developer_ids(skills=["django", "postgresql"], price_max=15_000,
                               currency="USD") == [grace_id]
    assert await developer_ids(q="carl") == []  # clients are not findable
    facets = await app.on_loop(backend.search, SearchQuery(kind="developer", facets=True))
    assert facets.skill_facets == {"django": 1, "postgresql": 1}

    deleted = await app.client.request("DELETE", f"{API}/me", headers=bearer(grace.access),
                                       json={"password": PASSWORD})
    assert deleted.status_code == 200, deleted.text
    await wait_until(lambda: _empty(developer_ids(skills=["django"])), what="her removal")
    assert await developer_ids(q="grace") == []


async def _contains(ids: Any, wanted: uuid.UUID) -> bool:
    return wanted in await ids


async def _empty(ids: Any) -> bool:
    return not await ids


# ---------------------------------------------------------------------------
# mercato search reindex
# ---------------------------------------------------------------------------


def test_reindex_command_rebuilds_from_the_tables(tmp_path: Path) -> None:
    site_dir = init_site(tmp_path)
    for email, role in (("dev@example.com", "developer"), ("client@example.com", "client"),
                        ("dev2@example.com", "developer")):
        created = mercato_with_input("users", "create", "--email", email, "--name", email.split("@")[0],
                                     "--role", role, "--password-stdin", cwd=site_dir,
                                     text="sturdy lamp harbour 9\n")
        assert created.returncode == 0, created.stderr

    result = mercato("search", "reindex", cwd=site_dir)
    assert result.returncode == 0, result.stderr
    assert "developer: 2 indexed" in result.stdout
    assert "Reindexed" in result.stdout

    only = mercato("search", "reindex", "--kind", "developer", cwd=site_dir)
    assert only.returncode == 0, only.stderr
    assert only.stdout.splitlines()[0] == "developer: 2 indexed"

    wrong = mercato("search", "reindex", "--kind", "robot", cwd=site_dir)
    assert wrong.returncode == 2
    assert any("robot" in line for line in error_lines(wrong))

    # The documents are really there, in the site's own database.
    async def check() -> tuple[int, int]:
        site = Site(load_settings(site_dir, environ={}))
        try:
            backend = site.plugins.search_backend(site)
            found = await backend.search(SearchQuery(kind="developer", q="dev2"))
            async with site.db.reading() as session:
                rows = await session.scalar(text("SELECT count(*) FROM search_fts"))
            return len(found.ids), int(rows or 0)
        finally:
            await site.db.dispose()

    assert asyncio.run(check()) == (1, 2)
    assert "reindex" in mercato("search", "--help", cwd=site_dir).stdout
