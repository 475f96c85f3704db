"""The baseline of the browse benchmark: a bare Litestar app that replays mercato's SQL.

For each captured page (keyed by its query string) it runs the same statements with the same
parameters that mercato ran for that page, in order, as ``site.db.reading()`` runs them (on
SQLite in one transaction rolled back at the end, on PostgreSQL outside a transaction),
fetching every row; then it returns the bytes of
mercato's page. What is left out is exactly what mercato adds: its middleware, the ORM,
services, templates.

The driver is mercato's (asyncpg with JIT off, or aiosqlite on SQLite) with as many connections as
mercato's pool may hold (``pool_size`` plus any overflow), opened at start. Served with
``uvicorn --factory tests.benchmarks._bare_browse_app:app_from_environment``; the pickled
:class:`BareSpec` is named by the ``MERCATO_BENCH_BARE_SPEC`` environment variable.
"""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request, Response, get
from sqlalchemy.engine import make_url

SPEC_ENV = "MERCATO_BENCH_BARE_SPEC"


@dataclass
class CapturedPage:
    statements: list[tuple[str, tuple[Any, ...]]]
    """What mercato sent to the driver for the page: (SQL, parameters), in order."""
    body: bytes
    media_type: str


@dataclass
class BareSpec:
    database_url: str
    """The site's SQLAlchemy URL (``postgresql+asyncpg://`` or ``sqlite+aiosqlite://``)."""
    connections: int
    pages: dict[str, CapturedPage]
    """Query string (``""`` for none) → the page."""


SERVER_SETTINGS = {"jit": "off", "plan_cache_mode": "force_custom_plan"}
"""The session settings mercato's PostgreSQL connections have (``mercato.core.db``)."""

class Connections:
    """A fixed set of driver connections, handed out one request at a time."""

    def __init__(self, url: str, size: int) -> None:
        self.url = make_url(url)
        self.sqlite = self.url.get_backend_name() == "sqlite"
        self.size = size
        self.idle: asyncio.Queue[Any] = asyncio.Queue()
        self.all: list[Any] = []

    async def open(self) -> None:
        for _ in range(self.size):
            if self.sqlite:
                import aiosqlite

                conn: Any = await aiosqlite.connect(str(self.url.database), isolation_level=None)
                await conn.execute("PRAGMA journal_mode=WAL")
            else:
                import asyncpg

                dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
                conn = await asyncpg.connect(dsn, server_settings=SERVER_SETTINGS)  # as mercato's
            self.all.append(conn)
            self.idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in self.all:
            await conn.close()

    async def replay(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        conn = await self.idle.get()
        try:
            if self.sqlite:
                await conn.execute("BEGIN")
                for sql, params in statements:
                    cursor = await conn.execute(sql, params)
                    await cursor.fetchall()
                await conn.execute("ROLLBACK")
            else:  # outside a transaction, as mercato reads on PostgreSQL
                for sql, params in statements:
                    await conn.fetch(sql, *params)
        finally:
            self.idle.put_nowait(conn)


def create_bare_app(spec: BareSpec) -> Litestar:
    connections = Connections(spec.database_url, spec.connections)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await connections.open()
        try:
            yield
        finally:
            await connections.close()

    @get("/projects", sync_to_thread=False)
    async def browse(request: Request[Any, Any, Any]) -> Response[bytes]:
        page = spec.pages[request.scope["query_string"].decode()]
        await connections.replay(page.statements)
        return Response(page.body, media_type=page.media_type)

    @get("/health", sync_to_thread=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar([browse, health], lifespan=[lifespan], debug=False, logging_config=None)


def app_from_environment() -> Litestar:
    """Factory for ``uvicorn --factory``."""
    with open(os.environ[SPEC_ENV], "rb") as fh:
        spec: BareSpec = pickle.load(fh)
    return create_bare_app(spec)
