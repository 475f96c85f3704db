"""Stopping background work: whole units of work survive the stop of their loop."""

from __future__ import annotations

import asyncio

import pytest

from mercato.core.tasks import Units, stop_task


async def test_a_stopped_loop_lets_its_running_unit_finish() -> None:
    units = Units()
    finished: list[int] = []

    async def unit(n: int) -> int:
        await asyncio.sleep(0.2)  # say, a transaction
        finished.append(n)
        return n

    async def loop() -> None:
        n = 0
        while True:
            n += 1
            assert await units.run(unit(n)) == n

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.05)
    await stop_task(task)
    assert task.cancelled()
    assert finished == []  # the loop is gone, its unit still runs
    await units.drain()
    assert finished == [1]


async def test_drain_cancels_what_overruns_and_failures_are_not_lost() -> None:
    units = Units()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    async def failing() -> None:
        raise RuntimeError("boom")

    loop = asyncio.create_task(units.run(forever()))
    await started.wait()
    await stop_task(loop)
    with pytest.raises(RuntimeError, match="boom"):
        await units.run(failing())
    await asyncio.wait_for(units.drain(seconds=0.1), timeout=5)
