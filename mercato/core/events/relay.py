"""The outbox relay: publishes committed outbox rows to JetStream, then deletes them.

Woken right after any commit that wrote an event, and sweeping on a timer for rows left by
another instance or a crash. On PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED``
so many instances relay side by side; on SQLite (one writer) rows are read, published and
deleted in separate short transactions so the database lock is never held across the
network. Either way a row published twice is dropped by JetStream's de-duplication on
``Nats-Msg-Id`` (the event id), and consumers are idempotent besides.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError

from mercato.core.db import utcnow
from mercato.core.events.models import OutboxEvent, ProcessedEvent
from mercato.core.tasks import Units, stop_task

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.js import JetStreamContext

    from mercato.core.db import Database

log = structlog.get_logger("mercato.events.relay")

PUBLISH_TIMEOUT = 5.0
PRUNE_INTERVAL = 3600.0


class OutboxRelay:
    """Moves events from the ``outbox`` table to the JetStream stream."""

    def __init__(
        self, db: Database, nc: NATS, js: JetStreamContext, *, stream: str, prefix: str,
        batch_size: int = 500, sweep_seconds: float = 2.0, keep_markers_days: float = 31.0,
    ) -> None:
        self.db = db
        self.nc = nc
        self.js = js
        self.stream = stream
        self.prefix = prefix
        self.batch_size = batch_size
        self.sweep_seconds = sweep_seconds
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._units = Units()
        self.published = 0
        self.keep_markers = timedelta(days=keep_markers_days)
        self._next_prune = 0.0

    def wake(self) -> None:
        """Ask the relay to publish now (called after a commit that wrote events)."""
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mercato-outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        await self._units.drain()

    async def _run(self) -> None:
        failures = 0
        while True:
            # After failures, back off (up to a minute) instead of repeating at once.
            wait = self.sweep_seconds if not failures else min(self.sweep_seconds * 2**failures, 60.0)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that lands together with a wake-up, and stop() would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._units.run(self._round())
                failures = 0
            except asyncio.CancelledError:
                raise
            except DBAPIError as exc:
                failures += 1
                if failures == 1:
                    log.error("outbox relay cannot read the database (is it migrated? run "
                              "`mercato db upgrade`); retrying", error=str(exc.orig))
            except Exception:
                failures += 1
                log.exception("outbox relay round failed; retrying", failures=failures)

    async def _round(self) -> None:
        """Publish everything pending, then prune old markers: run whole even when stopping."""
        while await self.publish_pending() == self.batch_size:
            pass
        await self._prune_markers()

    async def _prune_markers(self) -> None:
        """Hourly: forget processed-event markers older than anything JetStream still keeps."""
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_INTERVAL
        async with self.db.transaction() as session:
            await session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.processed_at < utcnow() - self.keep_markers)
            )

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; return how many were published."""
        if not self.nc.is_connected:
            return 0
        if self.db.sqlite:
            return await self._publish_batch_sqlite()
        return await self._publish_batch_locked()

    async def _publish_batch_locked(self) -> int:
        async with self.db.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.data)
                    .order_by(OutboxEvent.created_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            done = await self._publish(rows)
            if done:
                await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(done)))
        return len(done)

    async def _publish_batch_sqlite(self) -> int:
        async with self.db.reading() as session:
            rows = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.data)
                    .order_by(OutboxEvent.created_at)
                    .limit(self.batch_size)
                )
            ).all()
        if not rows:
            return 0
        done = await self._publish(rows)
        if done:
            async with self.db.transaction() as session:
                await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(done)))
        return len(done)

    async def _publish(self, rows: Sequence[Any]) -> list[uuid.UUID]:
        futures = []
        for row in rows:
            futures.append(
                await self.js.publish_async(
                    f"{self.prefix}.{row.type}", row.data, stream=self.stream,
                    headers={"Nats-Msg-Id": str(row.id)},
                )
            )
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), PUBLISH_TIMEOUT
            )
        except TimeoutError:
            for future in futures:
                future.cancel()
            log.warning("JetStream did not acknowledge in time; will retry", events=len(rows))
            return []
        done = [row.id for row, result in zip(rows, results, strict=True)
                if not isinstance(result, BaseException)]
        if len(done) < len(rows):
            failure = next(r for r in results if isinstance(r, BaseException))
            log.warning("some events were not published; will retry",
                        failed=len(rows) - len(done), error=repr(failure))
        self.published += len(done)
        return done
