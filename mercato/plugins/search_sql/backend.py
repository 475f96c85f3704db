"""``SqlSearchBackend``: search in the site's own database (SQLite FTS5 or PostgreSQL).

Documents live in ``search_documents`` (see ``models.py``); each database brings its own
full-text machinery:

* **PostgreSQL** — a weighted ``tsvector`` (title A, skills B, text C; text search
  configuration ``simple``: no stemming, no stop words, the same words as SQLite) computed
  in the upsert itself, with a GIN index. Terms are ANDed; the last one is a prefix
  (``djan`` finds Django). Typo tolerance: when no document matches every term
  (:data:`FUZZY_BELOW`), documents whose title has a word trigram-similar to each term of
  4 or more letters (``pg_trgm``'s GIN-indexed ``<%``) are found instead, ranked by that
  similarity (``pyhton`` finds Python).
* **SQLite** — an FTS5 table ``search_fts`` (title, skills, text; ``unicode61
  remove_diacritics 2``, prefix indexes of 2 and 3 characters) kept in step with
  ``search_documents`` by rowid (``search_documents.fts_rowid``): a write deletes the
  document's old FTS row and inserts the new one in the same transaction. Ranked by bm25
  with weights title 10, skills 5, text 1. The last term is a prefix. There is **no typo
  tolerance** on SQLite.

User input never reaches a query language unescaped: the query is cut into whitespace
separated terms (at most :data:`MAX_TERMS`, control characters dropped; terms without a
letter or digit are ignored) and each term is quoted (an FTS5 string, a ``tsquery``
quoted lexeme), so ``c++``, ``"``, ``AND OR NOT`` or ``'; drop table`` are just words. A
query without a single usable term is a browse, like an empty one.

Writes: :meth:`SqlSearchBackend.index` and :meth:`~SqlSearchBackend.remove` take an
optional ``session``. Event handlers pass theirs, so the index changes commit with the
processed-event marker (exactly once, and never ahead of the data they were built from);
without one the backend opens its own transaction.

Pages are keyset cursors over (sort key, created_at, id). Relevance cursors on SQLite
carry bm25 scores, which depend on the whole index's statistics: a write between two
pages can shift them (a document may then be seen twice or missed). PostgreSQL's
``ts_rank`` depends only on the document, so its pages are stable.
"""

from __future__ import annotations

import math
import re
import time
import typing
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec
from litestar.exceptions import ValidationException
from sqlalchemy import (
    Double,
    Float,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import Join

from mercato.core.pagination import decode_cursor, encode_cursor
from mercato.core.search import Kind, SearchDocument, SearchQuery, SearchResults

from .models import SearchEntry

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, FromClause, Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

T = TypeVar("T")

DOCS: Table = typing.cast("Table", SearchEntry.__table__)
FTS = table("search_fts", column("rowid"), column("title"), column("skills"), column("text"))
"""SQLite's FTS5 table (created by the migration; not a model)."""
FTS_NAME: ColumnElement[Any] = literal_column("search_fts")


class _FtsFirst(Join):
    """``search_fts CROSS JOIN search_documents ON …`` on SQLite.

    SQLite never reorders the tables of a CROSS JOIN. Without ``ANALYZE`` statistics its
    planner otherwise likes to walk the documents of a kind and run the full-text query
    once per document (100 ms for a count over 3,000 documents instead of 1 ms).
    """

    inherit_cache = True


@compiles(_FtsFirst, "sqlite")
def _compile_fts_first(element: _FtsFirst, compiler: Any, **kw: Any) -> str:
    rendered: str = compiler.visit_join(element, **kw)
    return rendered.replace(" JOIN ", " CROSS JOIN ", 1)


BATCH = 500
"""Documents written per statement."""
TS_CONFIG = "simple"
"""PostgreSQL text search configuration (changing it needs ``mercato search reindex``)."""
BM25_WEIGHTS = (10.0, 5.0, 1.0)
"""SQLite: title, skills, text."""
MAX_TERMS = 12
MAX_QUERY_CHARS = 300
FUZZY_BELOW = 1
"""PostgreSQL: blend in trigram matches on titles when fewer documents than this match
every term (1: only when none does; higher values let ``rust`` pull in "REST API")."""
FUZZY_THRESHOLD = 0.25
"""``pg_trgm.word_similarity_threshold`` for those: a swap of two letters destroys most
trigrams of a short word (``pyhton`` shares 2 of 7 with ``python``; the default 0.6 misses it)."""
FUZZY_MIN_CHARS = 4
"""Shorter terms take no part in fuzzy matching (too few trigrams to tell words apart)."""
FACET_LIMIT = 30
FACET_CACHE_FROM = 2_000
"""Skill facets over at least this many documents are kept for :data:`FACET_CACHE_SECONDS`:
counting them means reading every matching document's skills (a plain browse of 100,000
projects: a quarter of a second), and a count a few seconds old misleads nobody. Smaller
result sets are always counted afresh."""
FACET_CACHE_SECONDS = 30.0
FACET_CACHE_SIZE = 256
NO_PRICE_LOW = -1
NO_PRICE_HIGH = 2**62
"""Sort keys of documents without a price: last in both price orders."""
NEUTRAL_RATING = 3.0
RATING_WEIGHT = 0.05
"""Relevance is multiplied by ``1 + (rating - 3) * 0.05``: from 0.9 (rated 1) to 1.1 (rated 5)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACE = re.compile(r"\s+")

Mode = Literal["x", "f"]
"""Cursors remember whether the first page was exact (``x``) or fuzzy (``f``, PostgreSQL),
so every page of a walk uses the same condition."""


# ---------------------------------------------------------------------------
# Cleaning input
# ---------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """``value`` without NUL and other control characters (but newlines and tabs), and
    without unpaired surrogates: storable on every database."""
    value = value.encode("utf-8", "ignore").decode("utf-8")
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", value)


def clean_slug(value: str) -> str:
    return _SPACE.sub("-", value.strip().lower())


def query_terms(q: str) -> list[str]:
    """The searchable terms of what someone typed (see the module docstring)."""
    q = _CONTROL.sub(" ", clean_text(q[:MAX_QUERY_CHARS]))
    return [term for term in q.split() if any(ch.isalnum() for ch in term)][:MAX_TERMS]


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: every term a quoted string, the last one a prefix."""
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms]
    return " ".join(quoted) + "*"


def tsquery_text(terms: Sequence[str]) -> str:
    """``to_tsquery`` input: every term a quoted lexeme, ANDed, the last one a prefix."""
    quoted = ["'" + term.replace("\\", " ").replace("'", "''") + "'" for term in terms]
    quoted[-1] += ":*"
    return " & ".join(quoted)


def _chunks(items: Sequence[T], size: int = BATCH) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------------------
# Cursors
# ---------------------------------------------------------------------------


class _Key:
    """One ordering: its cursor tag, and the (expression, descending) pairs."""

    def __init__(self, tag: str, parts: list[tuple[ColumnElement[Any], bool]]) -> None:
        self.tag = tag
        self.parts = parts

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after ``values`` in this order (a keyset condition)."""
        condition: ColumnElement[bool] | None = None
        for (expr, descending), value in reversed(list(zip(self.parts, values, strict=True))):
            beyond = expr < value if descending else expr > value
            condition = beyond if condition is None else or_(beyond, and_(expr == value, condition))
        assert condition is not None
        return condition

    def order_by(self) -> list[ColumnElement[Any]]:
        return [expr.desc() if descending else expr.asc() for expr, descending in self.parts]


def _bad_cursor() -> ValueError:
    return ValueError("This cursor is not valid; start again without one.")


def _decode(cursor: str | None, tag: str) -> tuple[Mode, list[Any]] | None:
    """The fuzzy mode and sort key in a cursor :func:`_encode` made for ordering ``tag``;
    ``ValueError`` for anything else (another ordering's cursor included)."""
    if not cursor:
        return None
    try:
        if len(cursor) > 500:
            raise _bad_cursor()
        key: list[Any] = decode_cursor(cursor, {"r": 5, "n": 4, "pa": 5, "pd": 5}[tag]) or []
        found_tag, mode, *rest = key
        if found_tag != tag or mode not in ("x", "f"):
            raise _bad_cursor()
        values: list[Any] = []
        if tag != "n":  # the score or the price comes first
            first = rest.pop(0)
            wanted = int | float if tag == "r" else int
            if isinstance(first, bool) or not isinstance(first, wanted) or not math.isfinite(first):
                raise _bad_cursor()
            values.append(float(first) if tag == "r" else first)
        created = datetime.fromisoformat(rest[0])
        if created.tzinfo is None:
            raise _bad_cursor()
        values += [created, uuid.UUID(rest[1])]
    except (ValidationException, ValueError, TypeError, AttributeError, IndexError):
        raise _bad_cursor() from None
    return mode, values


def _encode(tag: str, mode: Mode, values: Sequence[Any]) -> str:
    out: list[Any] = [tag, mode]
    for value in values:
        if isinstance(value, datetime):
            out.append(value.isoformat())
        elif isinstance(value, uuid.UUID):
            out.append(str(value))
        else:
            out.append(value)
    return encode_cursor(*out)


# ---------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------


class SqlSearchBackend:
    """The built-in :class:`~mercato.core.search.SearchBackend` (one per site)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.db = site.db
        self.sqlite = site.db.sqlite
        self._facet_cache: OrderedDict[bytes, tuple[float, dict[str, int]]] = OrderedDict()

    @asynccontextmanager
    async def _reading(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        if session is not None:
            yield session
            return
        async with self.db.reading() as own:
            yield own

    async def _facets(self, session: AsyncSession, query: SearchQuery, mode: Mode, total: int,
                      source: FromClause, conditions: list[ColumnElement[bool]]) -> dict[str, int]:
        """Skill facets, from the cache when the result set is big (:data:`FACET_CACHE_FROM`)."""
        if total < FACET_CACHE_FROM:
            return await _skill_facets(session, source, conditions, self.sqlite)
        same_results = msgspec.structs.replace(query, cursor=None, sort="newest", limit=1)
        key = msgspec.json.encode(same_results) + mode.encode()
        now = time.monotonic()
        cached = self._facet_cache.get(key)
        if cached is not None and cached[0] > now:
            self._facet_cache.move_to_end(key)
            return cached[1]
        facets = await _skill_facets(session, source, conditions, self.sqlite)
        self._facet_cache[key] = (now + FACET_CACHE_SECONDS, facets)
        while len(self._facet_cache) > FACET_CACHE_SIZE:
            self._facet_cache.popitem(last=False)
        return facets

    @asynccontextmanager
    async def _writing(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        if session is not None:
            yield session
            return
        async with self.db.transaction() as own:
            yield own

    # -- writing --------------------------------------------------------------
    async def index(self, documents: list[SearchDocument], *, session: AsyncSession | None = None) -> None:
        """Add or replace ``documents`` (the last one wins when an id repeats).

        With ``session`` (an event handler's), the writes join its transaction; otherwise
        they commit on their own.
        """
        unique = {(doc.kind, doc.id): doc for doc in documents}
        rows = [_row(doc) for doc in unique.values()]
        if not rows:
            return
        async with self._writing(session) as s:
            for batch in _chunks(rows):
                if self.sqlite:
                    await self._index_sqlite(s, list(batch))
                else:
                    await self._index_postgresql(s, batch)

    async def _index_postgresql(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        def weighted(param: str, weight: str) -> ColumnElement[Any]:
            words = func.to_tsvector(_ts_config(), bindparam(param, type_=Text))
            return func.setweight(words, literal_column(f"'{weight}'::\"char\""))

        tsv = weighted("w_title", "A").op("||")(weighted("w_skills", "B")).op("||")(weighted("w_text", "C"))
        stmt = pg_insert(DOCS).values(tsv=tsv)
        updated = [c.name for c in DOCS.columns if c.name not in ("kind", "id", "fts_rowid")]
        stmt = stmt.on_conflict_do_update(
            index_elements=[DOCS.c.kind, DOCS.c.id], set_={name: stmt.excluded[name] for name in updated}
        )
        params = [{**_stored(row), "w_title": row["title"], "w_skills": _fts_skills(row["skills"]),
                   "w_text": row["text"]} for row in rows]
        await session.execute(stmt, params)

    async def _index_sqlite(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        existing: dict[tuple[str, uuid.UUID], int] = {}
        for kind, ids in _by_kind((row["kind"], row["id"]) for row in rows).items():
            found = await session.execute(
                select(DOCS.c.id, DOCS.c.fts_rowid).where(DOCS.c.kind == kind, DOCS.c.id.in_(ids))
            )
            existing.update({(kind, doc_id): rowid for doc_id, rowid in found if rowid is not None})
        if existing:
            await session.execute(delete(FTS).where(FTS.c.rowid.in_(list(existing.values()))))
        next_rowid = await self._next_fts_rowid(session)
        for row in rows:
            rowid = existing.get((row["kind"], row["id"]))
            if rowid is None:
                rowid, next_rowid = next_rowid, next_rowid + 1
            row["fts_rowid"] = rowid
        await session.execute(
            FTS.insert(),
            [{"rowid": row["fts_rowid"], "title": row["title"], "skills": _fts_skills(row["skills"]),
              "text": row["text"]} for row in rows],
        )
        stmt = sqlite_insert(DOCS)
        updated = [c.name for c in DOCS.columns if c.name not in ("kind", "id", "tsv")]
        stmt = stmt.on_conflict_do_update(
            index_elements=[DOCS.c.kind, DOCS.c.id], set_={name: stmt.excluded[name] for name in updated}
        )
        await session.execute(stmt, [_stored(row) for row in rows])

    async def _next_fts_rowid(self, session: AsyncSession) -> int:
        mapped = await session.scalar(select(func.max(DOCS.c.fts_rowid)))
        stored = await session.scalar(select(FTS.c.rowid).order_by(FTS.c.rowid.desc()).limit(1))
        return max(mapped or 0, stored or 0) + 1

    async def remove(self, kind: Kind, ids: list[uuid.UUID], *, session: AsyncSession | None = None) -> None:
        """Forget these documents (missing ones are fine); ``session`` as for :meth:`index`."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return
        async with self._writing(session) as s:
            for batch in _chunks(unique):
                where = (DOCS.c.kind == kind, DOCS.c.id.in_(batch))
                if self.sqlite:
                    rowids = [r for r in await s.scalars(select(DOCS.c.fts_rowid).where(*where))
                              if r is not None]
                    if rowids:
                        await s.execute(delete(FTS).where(FTS.c.rowid.in_(rowids)))
                await s.execute(delete(DOCS).where(*where))

    async def clear(self, kind: Kind | None = None, *, session: AsyncSession | None = None) -> None:
        """Forget every document (of ``kind``)."""
        async with self._writing(session) as s:
            if self.sqlite:
                if kind is None:
                    await s.execute(delete(FTS))
                else:
                    owned = select(DOCS.c.fts_rowid).where(DOCS.c.kind == kind)
                    await s.execute(delete(FTS).where(FTS.c.rowid.in_(owned.scalar_subquery())))
            await s.execute(delete(DOCS) if kind is None else delete(DOCS).where(DOCS.c.kind == kind))

    # -- searching --------------------------------------------------------------
    async def _plan(self, session: AsyncSession, terms: list[str], filters: list[ColumnElement[bool]],
                    mode: Mode) -> _Plan:
        """Where to look and what must hold: the filters, plus the text match for ``terms``
        (exact, or on PostgreSQL with ``mode`` ``f`` exact or like a title word)."""
        if not terms:
            return _Plan(mode="x", source=DOCS, conditions=filters)
        if self.sqlite:
            return _Plan(
                mode="x",
                source=_FtsFirst(FTS, DOCS, DOCS.c.fts_rowid == FTS.c.rowid),
                conditions=[*filters, FTS_NAME.op("MATCH")(fts5_query(terms))],
                score=cast(-func.bm25(FTS_NAME, *BM25_WEIGHTS), Float),
            )
        tsquery = func.to_tsquery(_ts_config(), tsquery_text(terms))
        exact = DOCS.c.tsv.op("@@")(tsquery)
        # Every long enough term must be like a word of the title (AND, as for exact
        # matches); `<%` is pg_trgm's GIN-indexed word similarity.
        fuzzy = [literal(term).op("<%")(DOCS.c.title) for term in terms if len(term) >= FUZZY_MIN_CHARS]
        score = cast(case(
            (exact, 1.0 + cast(func.ts_rank(DOCS.c.tsv, tsquery, 32), Double)),
            else_=cast(func.word_similarity(" ".join(terms), DOCS.c.title), Double),
        ), Double)
        if mode == "f" and fuzzy:
            # For the connection, not the transaction: reads run outside one on PostgreSQL.
            # Nothing else reads this setting, and its value never changes.
            await session.execute(select(func.set_config(
                "pg_trgm.word_similarity_threshold", str(FUZZY_THRESHOLD), False)))
            return _Plan(mode="f", source=DOCS, conditions=[*filters, or_(exact, and_(*fuzzy))], score=score)
        return _Plan(mode="x", source=DOCS, conditions=[*filters, exact], score=score,
                     fuzzy_possible=bool(fuzzy))

    async def search(self, query: SearchQuery, *, session: AsyncSession | None = None) -> SearchResults:
        """Matching ids in order, with ``total`` and (``query.facets``) ``skill_facets``.

        With ``session`` (the caller's), the queries run on its connection, so a request
        holds one connection, not two. ``ValueError`` for a cursor this backend did not make
        for this sort.
        """
        terms = query_terms(query.q)
        key_tag = _key_tag(query, bool(terms))
        after = _decode(query.cursor, key_tag)
        filters = _filters(query, self.sqlite)
        # The page and the number of all matches come in one statement. A text search ranks
        # every match anyway, so its first page counts them in the same scan (a window). Not
        # without text: the newest page then reads a few rows off an index, and a window would
        # make it read them all; nor on SQLite, whose bm25() cannot run in a window query; nor
        # on later pages, whose keyset condition hides the earlier pages from a window. Those
        # count in a subquery, run once.
        windowed = after is None and bool(terms) and not self.sqlite
        counting: Counting = "window" if windowed else "subquery"
        async with self._reading(session) as session:
            plan = await self._plan(session, terms, filters, after[0] if after else "x")
            key = _ordering(query, key_tag, plan.score)
            rows, total = await _page(session, plan, key, after, query.limit, count=counting)
            if windowed and total < FUZZY_BELOW and plan.fuzzy_possible:
                plan = await self._plan(session, terms, filters, "f")
                key = _ordering(query, key_tag, plan.score)
                rows, total = await _page(session, plan, key, after, query.limit, count=counting)
            next_cursor = None
            if len(rows) > query.limit:
                rows = rows[:query.limit]
                next_cursor = _encode(key_tag, plan.mode, list(rows[-1][1:1 + len(key.parts)]))
            if not rows and after is not None:  # past the last page: no row carried the count
                total = await _count(session, plan.source, plan.conditions)
            facets: dict[str, int] = {}
            if query.facets:
                facets = await self._facets(session, query, plan.mode, total, plan.source, plan.conditions)
        return SearchResults(ids=[row[0] for row in rows], next_cursor=next_cursor, total=total,
                             skill_facets=facets)


# ---------------------------------------------------------------------------
# Query parts
# ---------------------------------------------------------------------------


def _ts_config() -> ColumnElement[Any]:
    return literal_column(f"'{TS_CONFIG}'::regconfig")


def _row(doc: SearchDocument) -> dict[str, Any]:
    skills = list(dict.fromkeys(slug for slug in (clean_slug(clean_text(s)) for s in doc.skills) if slug))
    return {
        "kind": doc.kind, "id": doc.id, "title": clean_text(doc.title)[:300], "text": clean_text(doc.text),
        "skills": skills, "skills_text": f" {' '.join(skills)} ",
        "category": clean_text(doc.category) if doc.category else None,
        "currency": clean_text(doc.currency).upper() if doc.currency else None,
        "price_min": doc.price_min, "price_max": doc.price_max, "hourly": doc.hourly,
        "delivery_days": doc.delivery_days, "rating": doc.rating, "created_at": doc.created_at,
        "owner_id": doc.owner_id, "fts_rowid": None,
    }


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    """What ``search_documents`` keeps of a :func:`_row`: all but the body text."""
    return {key: value for key, value in row.items() if key != "text"}


def _fts_skills(skills: list[str]) -> str:
    """Skills as words for full text (``react-native`` → ``react native``)."""
    return " ".join(skill.replace("-", " ") for skill in skills)


def _by_kind(pairs: Iterable[tuple[str, uuid.UUID]]) -> dict[str, list[uuid.UUID]]:
    grouped: dict[str, list[uuid.UUID]] = {}
    for kind, doc_id in pairs:
        grouped.setdefault(kind, []).append(doc_id)
    return grouped


def _filters(query: SearchQuery, sqlite: bool) -> list[ColumnElement[bool]]:
    c = DOCS.c
    conditions: list[ColumnElement[bool]] = [c.kind == query.kind]
    slugs = [slug for slug in dict.fromkeys(clean_slug(clean_text(s)) for s in query.skills) if slug]
    if slugs and not sqlite:  # text[] with a GIN index
        conditions.append(c.skills.op("@>")(literal(slugs, ARRAY(Text()))))
    for slug in slugs if sqlite else []:
        conditions.append(c.skills_text.like(f"% {_escape_like(slug)} %", escape="\\"))
    if query.categories:
        conditions.append(c.category.in_(query.categories))
    if query.currency:
        conditions.append(c.currency == query.currency.upper())
    if query.price_min is not None:
        conditions.append(func.coalesce(c.price_max, c.price_min) >= query.price_min)
    if query.price_max is not None:
        conditions.append(func.coalesce(c.price_min, c.price_max) <= query.price_max)
    if query.hourly is not None:
        conditions.append(c.hourly == query.hourly)
    if query.max_delivery_days is not None:
        conditions.append(c.delivery_days <= query.max_delivery_days)
    if query.min_rating is not None:
        conditions.append(c.rating >= query.min_rating)
    return conditions


def _key_tag(query: SearchQuery, has_text: bool) -> str:
    if query.sort == "relevance":
        return "r" if has_text else "n"
    return {"newest": "n", "price_asc": "pa", "price_desc": "pd", "rating": "rt"}[query.sort]


def _ordering(query: SearchQuery, tag: str, score: ColumnElement[float] | None) -> _Key:
    c = DOCS.c
    newest: list[tuple[ColumnElement[Any], bool]] = [(c.created_at, True), (c.id, True)]
    if tag == "r":
        assert score is not None
        # Reputation nudges relevance: a 5.0 developer ranks 10% above an unrated one, a 1.0 one
        # 10% below; documents without a rating (projects, newcomers) keep their text score.
        boost = 1.0 + (func.coalesce(c.rating, NEUTRAL_RATING) - NEUTRAL_RATING) * RATING_WEIGHT
        return _Key(tag, [(cast(score * boost, Double), True), *newest])
    if tag == "rt":
        return _Key(tag, [(func.coalesce(c.rating, 0.0), True), *newest])
    if tag == "pa":
        return _Key(tag, [(func.coalesce(c.price_min, c.price_max, NO_PRICE_HIGH), False), *newest])
    if tag == "pd":
        return _Key(tag, [(func.coalesce(c.price_max, c.price_min, NO_PRICE_LOW), True), *newest])
    return _Key(tag, newest)


@dataclass
class _Plan:
    mode: Mode
    source: FromClause
    conditions: list[ColumnElement[bool]]
    score: ColumnElement[float] | None = None
    fuzzy_possible: bool = False
    """An exact text match that finds nothing may be retried fuzzily (PostgreSQL)."""


Counting = Literal["window", "subquery"]


async def _page(session: AsyncSession, plan: _Plan, key: _Key, after: tuple[Mode, list[Any]] | None,
                limit: int, *, count: Counting) -> tuple[list[Any], int]:
    """One page and one extra row (is there a next page?), each row ending with the number of
    all matches: counted by a window over the same scan, or by an uncorrelated subquery that
    the database runs once. 0 when the page is empty."""
    columns: list[ColumnElement[Any]] = [DOCS.c.id, *(expr for expr, _ in key.parts)]
    matching = select(*columns).select_from(plan.source).where(*plan.conditions)
    if after is not None:
        matching = matching.where(key.after(after[1]))
    if count == "window":
        # Sort keys (the rank) in a subquery, the window around it: it then holds narrow rows,
        # not whole documents with their tsvectors, which spilled to disk past a few thousand
        # matches. OFFSET 0 keeps PostgreSQL from merging the two back into one.
        labelled = matching.with_only_columns(*(column.label(f"k{i}") for i, column in enumerate(columns)))
        matches = labelled.offset(0).subquery("matches")
        parts = [(matches.c[f"k{i}"], descending) for i, (_, descending) in enumerate(key.parts, 1)]
        stmt = select(*matches.c, func.count().over()).order_by(*_Key(key.tag, parts).order_by())
    else:  # correlate(None): the subquery reads the table afresh, not the outer query's row
        total = select(func.count()).select_from(plan.source).where(*plan.conditions).correlate(None)
        stmt = matching.add_columns(total.scalar_subquery()).order_by(*key.order_by())
    rows = list((await session.execute(stmt.limit(limit + 1))).all())
    return rows, (int(rows[0][-1]) if rows else 0)


async def _count(session: AsyncSession, source: FromClause, conditions: list[ColumnElement[bool]]) -> int:
    return int(await session.scalar(select(func.count()).select_from(source).where(*conditions)) or 0)


async def _skill_facets(session: AsyncSession, source: FromClause, conditions: list[ColumnElement[bool]],
                        sqlite: bool) -> dict[str, int]:
    matching = select(DOCS.c.skills).select_from(source).where(*conditions).subquery("matching")
    if sqlite:
        skill = func.json_each(matching.c.skills).table_valued("value").alias("skill")
    else:  # unnest's column has no name of its own: `AS skill(value)`
        skill = func.unnest(matching.c.skills).table_valued("value").render_derived(name="skill")
    n = func.count().label("n")
    rows = await session.execute(
        select(skill.c.value, n).select_from(matching).join(skill, true())
        .group_by(skill.c.value).order_by(n.desc(), skill.c.value).limit(FACET_LIMIT)
    )
    return {str(value): int(count) for value, count in rows}
