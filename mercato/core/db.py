"""The database: one declarative ``Base``, the async engine and sessions.

SQLite (aiosqlite, WAL) is the default; PostgreSQL (asyncpg) by URL. On SQLite every
transaction starts with ``BEGIN IMMEDIATE``: writers queue on the database lock (with a
busy timeout) instead of failing when a read transaction later tries to write.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, Uuid, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


READ_ONLY = "mercato_read_only"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every mapped class, core and plugins alike."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, uuid.UUID: Uuid}


class UUIDPrimaryKey:
    """Mixin: a UUID primary key generated in Python."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    """Mixin: ``created_at`` and ``updated_at`` kept by the ORM."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def conflict_insert(dialect: str) -> Callable[..., Any]:
    """The dialect's ``insert``, which has ``ON CONFLICT`` (PostgreSQL and SQLite alike)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class Database:
    """The engine and session factory of one site.

    ``after_commit`` callbacks run after any session of this database commits; the outbox
    relay uses it to publish right away instead of waiting for its next sweep.
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.sqlite:
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # No ping before each checkout (a round trip per request): when the server goes
            # away, the first statement that fails marks every pooled connection stale, so
            # only the requests in flight see the error and the next ones reconnect. Connections
            # are renewed after half an hour, before proxies that drop idle ones would.
            # No overflow: an overflow connection is closed when it comes back to a full pool,
            # so under steady load above pool_size every few requests paid for a new server
            # process and TLS handshake. Requests beyond pool_size wait for a connection.
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_recycle=1800)
            if make_url(url).get_driver_name() == "asyncpg":
                # PostgreSQL's JIT compiles plans of queries it guesses to be long; for short
                # marketplace queries over big tables it costs 20+ ms and saves nothing.
                # asyncpg prepares every statement, and after five runs PostgreSQL may switch
                # to one generic plan for all parameter values. Filters and search words range
                # from rare to common, so a plan fit for one is slow for another: a search
                # with two filters took 58 ms instead of 25, a browse page filtered by skill
                # 45 ms instead of 25. Planning each run costs well under a millisecond.
                kwargs["connect_args"] = {
                    "server_settings": {"jit": "off", "plan_cache_mode": "force_custom_plan"}
                }
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.sqlite:
            _configure_sqlite(self.engine)
        self._after_commit: list[Callable[[Session], None]] = []
        session_class = type("MercatoSession", (Session,), {})
        event.listen(session_class, "after_commit", self._run_after_commit)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=session_class
        )
        read_options: dict[str, Any] = {READ_ONLY: True}
        if not self.sqlite:
            # No BEGIN and ROLLBACK around reads: two round trips fewer per page. Under READ
            # COMMITTED each statement sees its own snapshot either way, so nothing is lost.
            read_options["isolation_level"] = "AUTOCOMMIT"
        self.read_engine: AsyncEngine = self.engine.execution_options(**read_options)
        """Same pool. On SQLite its transactions begin DEFERRED, so readers never queue for
        the write lock; on PostgreSQL its statements run outside a transaction."""
        reader_class = type("MercatoReadSession", (Session,), {})
        event.listen(reader_class, "before_flush", _refuse_flush)
        event.listen(reader_class, "do_orm_execute", _refuse_writes)
        self._read_sessionmaker = async_sessionmaker(
            self.read_engine, expire_on_commit=False, autoflush=False, sync_session_class=reader_class
        )

    def on_commit(self, callback: Callable[[Session], None]) -> None:
        """Call ``callback(sync_session)`` after every commit of a session of this database."""
        self._after_commit.append(callback)

    def _run_after_commit(self, session: Session) -> None:
        for callback in self._after_commit:
            callback(session)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: writing through it raises :class:`ReadOnlySessionError`.
        Rolled back at the end; never takes SQLite's write lock."""
        async with self._read_sessionmaker() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def dispose(self) -> None:
        await self.engine.dispose()


class ReadOnlySessionError(RuntimeError):
    """A write was attempted in a session of :meth:`Database.reading`."""


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    raise ReadOnlySessionError("a reading() session cannot write; use Database.transaction()")


def _refuse_writes(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError("a reading() session cannot write; use Database.transaction()")


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE is ours to send.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
