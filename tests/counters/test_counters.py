"""Counter windows and both backends through the one interface."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from portico.counters import Counters, Window, load_backend, window_for

REDIS_URL = "redis://127.0.0.1:6379/0"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_windows_align_to_interval_boundaries() -> None:
    assert window_for(ms("2026-11-22T10:17:31"), 5, "minutes") == Window(ms("2026-11-22T10:15:00"),
                                                                          ms("2026-11-22T10:20:00"))
    assert window_for(ms("2026-11-22T10:17:31"), 1, "days") == Window(ms("2026-11-22T00:00:00"),
                                                                       ms("2026-11-23T00:00:00"))
    # 2026-11-22 is a Sunday.
    monday = window_for(ms("2026-11-22T10:00:00"), 1, "weeks", "MONDAY")
    assert monday == Window(ms("2026-11-16T00:00:00"), ms("2026-11-23T00:00:00"))
    sunday = window_for(ms("2026-11-22T10:00:00"), 1, "weeks", "SUNDAY")
    assert sunday == Window(ms("2026-11-22T00:00:00"), ms("2026-11-29T00:00:00"))
    assert window_for(ms("2026-11-21T23:59:59"), 1, "weeks", "SUNDAY").end_ms == ms("2026-11-22T00:00:00")
    assert window_for(ms("2026-11-22T10:00:00"), 1, "months") == Window(ms("2026-11-01T00:00:00"),
                                                                         ms("2026-12-01T00:00:00"))
    assert window_for(ms("2026-12-31T10:00:00"), 3, "months") == Window(ms("2026-10-01T00:00:00"),
                                                                         ms("2027-01-01T00:00:00"))
    with pytest.raises(ValueError):
        window_for(0, 0, "minutes")


@pytest.fixture(params=["memory", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[Counters]:
    options = {"url": REDIS_URL, "prefix": f"test:{uuid.uuid4().hex}:"} if request.param == "redis" else {}
    backend = load_backend(request.param, **options)
    yield backend
    await backend.reset("")
    await backend.close()


async def test_acquire_is_exact_and_windows_are_separate(counters: Counters) -> None:
    w1, w2 = Window(1_000, 2_000_000_000_000_000), Window(2_000_000_000_000_000, 3_000_000_000_000_000)
    results = await asyncio.gather(*(counters.acquire("k", 10, w1) for _ in range(200)))
    assert sum(r.allowed for r in results) == 10 and max(r.count for r in results) == 10
    assert await counters.get("k", w1) == 10
    assert (await counters.acquire("k", 10, w2)).allowed  # the next window starts from zero
    assert await counters.get("k", w2) == 1


async def test_add_put_snapshot_reset(counters: Counters) -> None:
    w = Window(0, 2_000_000_000_000_000)
    assert await counters.add("q:a:ok", w) == 1 and await counters.add("q:a:ok", w, 4) == 5
    await counters.put("q:a", w, 7)
    await counters.put("q:a", w, 3)  # a restored count never lowers a live one
    assert await counters.get("q:a", w) == 7
    assert sorted((k, c) for k, _, c in await counters.snapshot("q:")) == [("q:a", 7), ("q:a:ok", 5)]
    await counters.reset("q:a")
    assert await counters.snapshot("q:") == []


async def test_a_late_add_to_a_finished_window_leaves_the_current_one_alone(counters: Counters) -> None:
    # A call admitted before a boundary has its success tallied after it, in its own window.
    w1, w2 = Window(1_000, 2_000_000_000_000_000), Window(2_000_000_000_000_000, 3_000_000_000_000_000)
    await counters.add("q:a:ok", w2, 3)
    await counters.add("q:a:ok", w1)
    await counters.put("q:a:ok", w1, 9)
    assert await counters.get("q:a:ok", w2) == 3
    assert (await counters.add("q:a:ok", w2)) == 4


def test_unknown_backend_is_named() -> None:
    with pytest.raises(ValueError, match="memory"):
        load_backend("etcd")


def test_window_for_is_right_on_both_sides_of_a_boundary_whatever_was_asked_before() -> None:
    # window_for remembers the last window per (interval, unit): asking across a boundary, or back
    # in time (a clock step), must still give the window holding the instant asked about.
    before = window_for(ms("2026-11-22T10:59:59"), 1, "hours")
    after = window_for(ms("2026-11-22T11:00:00"), 1, "hours")
    assert before == Window(ms("2026-11-22T10:00:00"), ms("2026-11-22T11:00:00"))
    assert after == Window(ms("2026-11-22T11:00:00"), ms("2026-11-22T12:00:00"))
    assert window_for(ms("2026-11-22T10:30:00"), 1, "hours") == before
    assert window_for(ms("2026-11-22T11:30:00"), 1, "hours") is window_for(ms("2026-11-22T11:45:00"), 1, "hours")
    assert window_for(ms("2026-11-22T11:30:00"), 2, "hours") == Window(ms("2026-11-22T10:00:00"),
                                                                      ms("2026-11-22T12:00:00"))


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_a_hung_redis_costs_one_call_the_timeout_per_back_off() -> None:
    """Redis stops answering (SIGSTOP: connections open, no replies): after the back-off one call
    finds out whether it is back; the others fail at once instead of each waiting the timeout."""
    from portico.counters import CounterUnavailable
    from portico.counters.redis import RedisCounters
    from tests.policies.test_throttle import start_redis
    from tests.support.process import free_port

    port = free_port()
    proc = start_redis(port)
    counters = RedisCounters(f"redis://127.0.0.1:{port}/0", prefix=f"test:{uuid.uuid4().hex}:", timeout=1.0)
    window = Window(0, 2_000_000_000_000_000)
    try:
        assert (await counters.acquire("k", 5, window)).allowed
        proc.send_signal(signal.SIGSTOP)
        with pytest.raises(CounterUnavailable):
            await counters.acquire("k", 5, window)  # times out: the store is down
        await asyncio.sleep(1.2)  # past the back-off

        async def timed() -> float:
            start = time.monotonic()
            with pytest.raises(CounterUnavailable):
                await counters.acquire("k", 5, window)
            return time.monotonic() - start

        durations = await asyncio.gather(*(timed() for _ in range(20)))
        assert sum(d >= 0.9 for d in durations) == 1, durations  # only the probe waited the timeout
    finally:
        proc.send_signal(signal.SIGCONT)
        await counters.close()
        proc.kill()
        proc.wait(10)
