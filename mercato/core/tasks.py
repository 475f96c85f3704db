"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import TypeVar

import structlog

log = structlog.get_logger("mercato.tasks")

ATTEMPTS = 10

T = TypeVar("T")


async def stop_task(task: asyncio.Task[object], *, seconds: float = 1.0) -> None:
    """Cancel ``task`` and wait until it ends, cancelling again every ``seconds``.

    One cancellation is not always enough: on Python 3.11 ``asyncio.wait_for`` (in this code or
    in a library) swallows a cancellation that lands as its inner call completes, and the task
    then carries on. A task still running after :data:`ATTEMPTS` tries is left, with a warning,
    rather than hanging the shutdown.
    """
    for _ in range(ATTEMPTS):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if done:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
            return
    log.warning("a background task did not stop", task=task.get_name())


class Units:
    """Units of work a stop must not cut in half, such as a database transaction.

    A background loop runs each unit through :meth:`run`: cancelling the loop then leaves the
    unit running to its end (``asyncio.shield``), and :meth:`drain`, called after the loop is
    stopped, waits for those still running. A unit cancelled in the middle of a statement
    makes SQLAlchemy terminate its connection; on aiosqlite that can leave a close that never
    finishes, and the process hangs on exit.
    """

    def __init__(self) -> None:
        self._running: set[asyncio.Task[object]] = set()

    async def run(self, work: Coroutine[object, object, T]) -> T:
        task = asyncio.ensure_future(work)
        self._running.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here: the loop that awaited it may be gone

    async def drain(self, *, seconds: float = 10.0) -> None:
        """Wait up to ``seconds`` for the units still running, then cancel what is left."""
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=seconds)
            await asyncio.gather(*(stop_task(task) for task in late))
