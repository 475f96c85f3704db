"""Scheduling timers, and the sweeper that runs them when due.

A service schedules a timer in the same transaction as the change that needs it
(:func:`schedule`), and cancels it the same way (:func:`cancel`). The sweeper claims due
timers one at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so instances never run the
same timer) and calls the handler of its kind **in the transaction that deletes it**: the
handler's work and the timer's end commit together, or neither does. A handler may schedule
its own timer again (same kind and ref) to run once more later. A handler that raises is
retried later with back-off; after :data:`MAX_ATTEMPTS` the timer stays, logged, for an
operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, func, select

from mercato.core.db import conflict_insert, utcnow
from mercato.core.tasks import Units, stop_task
from mercato.core.timers.models import Timer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    from mercato.core.db import Database

log = structlog.get_logger("mercato.timers")

MAX_ATTEMPTS = 8
SCHEDULED = "mercato.timers_scheduled"
"""Session flag: a timer was scheduled, so this process's sweeper looks again after commit."""
LEASE_SECONDS = 300
"""How long a timer run outside a transaction is kept from other sweepers."""


@dataclass(frozen=True, slots=True)
class TimerHandler:
    """What runs timers of ``kind`` (from ``register_timer_handlers``)."""

    kind: str
    handle: Callable[[Any, Timer], Awaitable[None]]
    """Called inside the transaction that deletes the timer (``transactional``), or with
    ``None`` and no transaction open."""
    transactional: bool = True
    """False for work that must not hold a transaction open, such as a call to another
    service: the timer is then leased for :data:`LEASE_SECONDS`, and deleted once the work
    succeeds. Such work must be safe to repeat (a crash after it, before the delete, runs it
    again)."""


async def schedule(
    session: AsyncSession, kind: str, ref: str, due_at: datetime, data: dict[str, Any] | None = None
) -> None:
    """Run ``kind`` for ``ref`` at ``due_at``; an existing timer of that kind and ref moves to
    the new moment."""
    insert = conflict_insert(session.get_bind().dialect.name)(Timer).values(
        id=uuid.uuid4(), kind=kind, ref=ref, due_at=due_at, data=data or {}, attempts=0,
        last_error="", created_at=utcnow(),
    )
    await session.execute(insert.on_conflict_do_update(
        index_elements=["kind", "ref"],
        set_={"due_at": insert.excluded.due_at, "data": insert.excluded.data, "attempts": 0},
    ))
    session.sync_session.info[SCHEDULED] = True


async def cancel(session: AsyncSession, kind: str, ref: str) -> None:
    await session.execute(delete(Timer).where(Timer.kind == kind, Timer.ref == ref))


class Sweeper:
    """Runs due timers in the background (one per process that does background work)."""

    def __init__(self, db: Database, handlers: list[TimerHandler], *, interval: float = 5.0) -> None:
        self.db = db
        self.handlers = {handler.kind: handler for handler in handlers}
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._units = Units()
        self._wakeup = asyncio.Event()
        db.on_commit(self._after_commit)

    def _after_commit(self, session: Session) -> None:
        # Read, not popped: a process may run more than one sweeper on a database (tests do).
        if session.info.get(SCHEDULED) and self._task is not None:
            self.wake()

    def start(self) -> None:
        if self.handlers and self._task is None:
            self._task = asyncio.create_task(self._run(), name="timers")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        await self._units.drain()

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            wait = self.interval
            try:
                while await self._units.run(self.run_one()):
                    pass
                wait = min(wait, await self._until_next())
            except Exception as exc:
                log.warning("timer sweep failed; retrying", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    async def _until_next(self) -> float:
        """Seconds until the next timer this sweeper runs falls due."""
        async with self.db.reading() as session:
            due = await session.scalar(
                select(func.min(Timer.due_at))
                .where(Timer.kind.in_(self.handlers), Timer.attempts < MAX_ATTEMPTS)
            )
        return self.interval if due is None else max(0.0, (due - utcnow()).total_seconds())

    async def run_due(self, now: datetime | None = None) -> int:
        """Run every timer due by ``now``; how many ran (for tests and ``mercato`` commands)."""
        count = 0
        while await self.run_one(now):
            count += 1
        return count

    async def run_one(self, now: datetime | None = None) -> bool:
        """Claim and run one due timer; False when none is due."""
        now = now or utcnow()
        async with self.db.transaction() as session:
            query = (
                select(Timer)
                .where(Timer.due_at <= now, Timer.kind.in_(self.handlers), Timer.attempts < MAX_ATTEMPTS)
                .order_by(Timer.due_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            timer = await session.scalar(query)
            if timer is None:
                return False
            handler = self.handlers[timer.kind]
            claimed_due = timer.due_at
            if not handler.transactional:
                # Leased: pushed past the work's longest run, so no other sweeper takes it meanwhile.
                claimed_due = timer.due_at = now + timedelta(seconds=LEASE_SECONDS)
            else:
                try:
                    async with session.begin_nested():
                        await handler.handle(session, timer)
                except Exception as exc:
                    _failed(timer, exc, now)
                    return True
                # By id and moment, not the ORM object: the handler may have cancelled its own
                # timer already, or scheduled it again for later (then it stays).
                await session.execute(delete(Timer).where(Timer.id == timer.id, Timer.due_at == claimed_due))
                return True
        try:
            await handler.handle(None, timer)
        except Exception as exc:
            async with self.db.transaction() as session:
                leased = await session.get(Timer, timer.id)
                if leased is not None and leased.due_at == claimed_due:
                    _failed(leased, exc, now)
            return True
        async with self.db.transaction() as session:
            await session.execute(delete(Timer).where(Timer.id == timer.id, Timer.due_at == claimed_due))
        return True


def _failed(timer: Timer, exc: Exception, now: datetime) -> None:
    timer.attempts += 1
    timer.last_error = repr(exc)[:500]
    timer.due_at = now + timedelta(seconds=min(30 * 2**timer.attempts, 6 * 3600))
    log.warning("timer failed", kind=timer.kind, ref=timer.ref, attempts=timer.attempts, error=repr(exc))
