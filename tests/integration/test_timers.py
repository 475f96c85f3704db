"""Timers: scheduled in a transaction, run once when due by whichever sweeper claims them,
together with the handler's work; retried with back-off when the handler fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mercato import hookimpl
from mercato.core.db import utcnow
from mercato.core.plugins import build_plugin_manager
from mercato.core.site import Site
from mercato.core.timers import TimerHandler, cancel, schedule
from mercato.core.timers.models import Timer
from mercato.core.timers.services import MAX_ATTEMPTS, Sweeper


@pytest.fixture
async def site(migrated_settings: Any) -> AsyncIterator[Site]:
    site = Site(migrated_settings)
    yield site
    await site.db.dispose()


class Recorder:
    """A handler that notes each run, in the timer's transaction (a row of its own kind)."""

    def __init__(self, kind: str = "test.note", *, fail: int = 0) -> None:
        self.kind = kind
        self.runs: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    async def handle(self, session: Any, timer: Timer) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("not yet")
        await asyncio.sleep(0.01)  # give racing sweepers their chance
        self.runs.append((timer.ref, dict(timer.data)))

    def handler(self) -> TimerHandler:
        return TimerHandler(self.kind, self.handle)


async def timers(site: Site) -> list[Any]:
    """Every timer as (kind, ref, attempts, last_error, due_at)."""
    async with site.db.reading() as session:
        columns = (Timer.kind, Timer.ref, Timer.attempts, Timer.last_error, Timer.due_at)
        query = select(*columns).order_by(Timer.ref)
        return list((await session.execute(query)).all())


async def test_a_due_timer_runs_once_and_is_gone(site: Site) -> None:
    recorder = Recorder()
    sweeper = Sweeper(site.db, [recorder.handler()])
    now = utcnow()
    async with site.db.transaction() as session:
        await schedule(session, "test.note", "a", now - timedelta(seconds=1), {"n": 1})
        await schedule(session, "test.note", "later", now + timedelta(days=1))
        await schedule(session, "other.kind", "b", now - timedelta(seconds=1))  # nobody handles it

    assert await sweeper.run_due(now) == 1
    assert recorder.runs == [("a", {"n": 1})]
    left = [(kind, ref) for kind, ref, *_ in await timers(site)]
    assert left == [("other.kind", "b"), ("test.note", "later")]

    assert await sweeper.run_due(now + timedelta(days=2)) == 1
    assert [ref for ref, _ in recorder.runs] == ["a", "later"]
    assert await sweeper.run_due(now + timedelta(days=3)) == 0


async def test_scheduling_again_moves_the_timer_and_cancel_removes_it(site: Site) -> None:
    recorder = Recorder()
    sweeper = Sweeper(site.db, [recorder.handler()])
    now = utcnow()
    async with site.db.transaction() as session:
        await schedule(session, "test.note", "a", now - timedelta(seconds=1), {"v": 1})
        await schedule(session, "test.note", "a", now + timedelta(hours=1), {"v": 2})
        await schedule(session, "test.note", "b", now - timedelta(seconds=1))
    async with site.db.transaction() as session:
        await cancel(session, "test.note", "b")
    assert await sweeper.run_due(now) == 0
    assert await sweeper.run_due(now + timedelta(hours=2)) == 1
    assert recorder.runs == [("a", {"v": 2})]


async def test_a_failing_handler_is_retried_with_back_off_then_left_for_an_operator(site: Site) -> None:
    recorder = Recorder(fail=1)
    sweeper = Sweeper(site.db, [recorder.handler()])
    now = utcnow()
    async with site.db.transaction() as session:
        await schedule(session, "test.note", "a", now)
    assert await sweeper.run_due(now) == 1  # ran, failed, pushed back
    [(_, _, attempts, last_error, due_at)] = await timers(site)
    assert attempts == 1
    assert "not yet" in last_error
    assert due_at > now
    assert await sweeper.run_due(now) == 0  # not due again yet
    assert await sweeper.run_due(due_at) == 1
    assert recorder.runs == [("a", {})]
    assert await timers(site) == []

    stubborn = Recorder(fail=10**6)
    sweeper = Sweeper(site.db, [stubborn.handler()])
    async with site.db.transaction() as session:
        await schedule(session, "test.note", "b", now)
    moment = now
    for _ in range(MAX_ATTEMPTS):
        assert await sweeper.run_due(moment) == 1
        moment += timedelta(days=1)
    assert await sweeper.run_due(moment) == 0
    [(_, _, attempts, _, _)] = await timers(site)
    assert attempts == MAX_ATTEMPTS  # kept, with its error, for someone to look at


async def test_the_handlers_work_rolls_back_with_its_failure(site: Site) -> None:
    async def half_done(session: Any, timer: Timer) -> None:
        await schedule(session, "test.side", "effect", utcnow())
        raise RuntimeError("half way")

    sweeper = Sweeper(site.db, [TimerHandler("test.half", half_done)])
    async with site.db.transaction() as session:
        await schedule(session, "test.half", "x", utcnow())
    await sweeper.run_due()
    assert [(kind, attempts) for kind, _, attempts, *_ in await timers(site)] == [("test.half", 1)]


async def test_racing_sweepers_run_each_timer_once(site: Site) -> None:
    recorder = Recorder()
    sweepers = [Sweeper(site.db, [recorder.handler()]) for _ in range(4)]
    now = utcnow()
    async with site.db.transaction() as session:
        for n in range(20):
            await schedule(session, "test.note", f"t{n:02}", now - timedelta(seconds=1))
    counts = await asyncio.gather(*(sweeper.run_due(now) for sweeper in sweepers))
    assert sum(counts) == 20
    assert sorted(ref for ref, _ in recorder.runs) == [f"t{n:02}" for n in range(20)]


async def test_the_background_sweeper_runs_what_falls_due(site: Site) -> None:
    recorder = Recorder()
    sweeper = Sweeper(site.db, [recorder.handler()], interval=0.05)
    sweeper.start()
    try:
        async with site.db.transaction() as session:
            await schedule(session, "test.note", "soon", utcnow() + timedelta(milliseconds=100))
        for _ in range(100):
            if recorder.runs:
                break
            await asyncio.sleep(0.05)
        assert recorder.runs == [("soon", {})]
    finally:
        await sweeper.stop()


class TimerPlugin:
    """A plugin whose handler a started site's own sweeper runs."""

    def __init__(self) -> None:
        self.recorder = Recorder("plugin.note")

    @hookimpl
    def register_timer_handlers(self, site: Site) -> list[TimerHandler]:
        return [self.recorder.handler()]


async def test_a_started_site_runs_its_plugins_timers(make_settings: Any, sites: Any) -> None:
    plugin = TimerPlugin()
    settings = make_settings()
    site = await sites.start(settings, pm=build_plugin_manager(settings, extra=[("timer_plugin", plugin)]))
    site.timers.interval = 0.05
    async with site.db.transaction() as session:
        await schedule(session, "plugin.note", "hello", utcnow(), {"from": "plugin"})
    site.timers.wake()
    for _ in range(100):
        if plugin.recorder.runs:
            break
        await asyncio.sleep(0.05)
    assert plugin.recorder.runs == [("hello", {"from": "plugin"})]


async def test_work_outside_a_transaction_is_leased_then_deleted_or_retried(site: Site) -> None:
    """A handler that calls another service runs with no transaction open, so it may use the
    database itself (here: a write of its own, which on SQLite would wait forever for the
    sweeper's lock if it were held)."""
    ran: list[str] = []
    fail = {"b": 1}

    async def call_out(session: Any, timer: Timer) -> None:
        assert session is None
        async with site.db.transaction() as own:
            await schedule(own, "test.side", f"after-{timer.ref}", utcnow() + timedelta(days=9))
        if fail.get(timer.ref):
            fail[timer.ref] -= 1
            raise RuntimeError("the other service is down")
        ran.append(timer.ref)

    handler = TimerHandler("test.call", call_out, transactional=False)
    sweepers = [Sweeper(site.db, [handler]) for _ in range(3)]
    now = utcnow()
    async with site.db.transaction() as session:
        await schedule(session, "test.call", "a", now)
        await schedule(session, "test.call", "b", now)
    counts = await asyncio.gather(*(sweeper.run_due(now) for sweeper in sweepers))
    assert sum(counts) == 2
    assert ran == ["a"]
    left = {(kind, ref): attempts for kind, ref, attempts, *_ in await timers(site)}
    assert left[("test.call", "b")] == 1  # failed once, waits for its retry
    assert ("test.call", "a") not in left
    await sweepers[0].run_due(now + timedelta(hours=1))
    assert ran == ["a", "b"]
    assert [kind for kind, *_ in await timers(site)] == ["test.side", "test.side"]


async def test_the_sweeper_sleeps_until_the_next_timer_not_a_whole_interval(site: Site) -> None:
    recorder = Recorder()
    sweeper = Sweeper(site.db, [recorder.handler()], interval=60.0)
    sweeper.start()
    try:
        await asyncio.sleep(0.1)  # asleep, with nothing due
        async with site.db.transaction() as session:  # the commit wakes it; it sleeps until due
            await schedule(session, "test.note", "soon", utcnow() + timedelta(milliseconds=300))
        for _ in range(40):
            if recorder.runs:
                break
            await asyncio.sleep(0.05)
        assert recorder.runs == [("soon", {})]
    finally:
        await sweeper.stop()
