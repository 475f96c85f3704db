"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

log = structlog.get_logger("mercato.tasks")

ATTEMPTS = 10


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
