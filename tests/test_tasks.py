"""portico.tasks: stopping background tasks without losing a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from portico.tasks import stop_task, wait_event


async def test_wait_event_reports_set_or_timeout() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 5) is True


async def test_a_loop_woken_as_it_is_cancelled_still_stops() -> None:
    wake = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            await wait_event(wake, 60)
            wake.clear()
            rounds += 1

    for turns in range(4):
        task = asyncio.create_task(loop())
        await asyncio.sleep(0.01)
        wake.set()
        for _ in range(turns):
            await asyncio.sleep(0)
        async with asyncio.timeout(2):
            await stop_task(task)
        assert task.cancelled()


async def test_stop_task_lets_the_callers_own_cancellation_through() -> None:
    give_up = False

    async def stubborn() -> None:
        while not give_up:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                continue  # ignores being stopped

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop_task(task))
    await asyncio.sleep(0.01)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert not task.done()
    give_up = True
    task.cancel()
    await asyncio.wait({task})


async def test_stop_task_raises_the_tasks_own_failure() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await stop_task(task)
    await stop_task(None)
