"""Quota survival (portico/counters/survival.py): a node whose Redis is down at start still starts
and restores the saved counts once Redis is back, as it does when Redis restarts empty; nodes
sharing a database save at once; any number of keys."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from portico.counters import window_for
from portico.counters.memory import MemoryCounters
from portico.counters.survival import QuotaSurvival
from portico.store import Store
from portico.store.tables import quota_counters
from tests.admin.test_packages import calls, setup_package
from tests.policies.test_throttle import start_redis
from tests.support.node import Node, running_node
from tests.support.process import free_port
from tests.support.upstream import Upstream


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_redis_down_at_start_then_saved_quota_restored(sqlite_url: str, tmp_path: Path,
                                                             upstream: Upstream) -> None:
    port = free_port()
    redis_proc = start_redis(port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        async with running_node(sqlite_url, tmp_path / "data", redis_url=url) as node:
            *_, sub = await setup_package(node, upstream, quota=3)
            key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
            assert await calls(node, key, 2) == [200, 200]  # saved at shutdown
        redis_proc.terminate()
        redis_proc.wait(10)
        async with running_node(sqlite_url, tmp_path / "data", redis_url=url) as node:
            assert await calls(node, key, 1) == [200]  # Redis down: fail open (the default)
            redis_proc = start_redis(port)  # back, and empty
            await _usage_reaches(node, sub["id"], 2)  # the saved count, without a restart
            assert await calls(node, key, 2) == [200, 429]
    finally:
        redis_proc.kill()
        redis_proc.wait(10)


async def _usage_reaches(node: Node, app_id: str, used: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        r = await node.admin.get(f"/subscriptions/{app_id}/usage")
        if r.status_code == 200 and r.json()["usedQuota"] == used:
            return
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.2)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_saved_quota_restored_after_redis_restarts_empty(sqlite_url: str, tmp_path: Path,
                                                               upstream: Upstream) -> None:
    """Redis restarts without its data while the node runs: the saved counts come back."""
    port = free_port()
    redis_proc = start_redis(port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        async with running_node(sqlite_url, tmp_path / "data", redis_url=url) as node:
            r = await node.admin.put("/configurations/settings", json={"preferredSettings": {
                "extendedKeys": {"pgmen.quotaSurvival.interval": "0.2"}}})
            assert r.status_code == 200, r.text  # read when the saver starts: restart to apply
        async with running_node(sqlite_url, tmp_path / "data", redis_url=url) as node:
            *_, sub = await setup_package(node, upstream, quota=3)
            key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
            assert await calls(node, key, 2) == [200, 200]
            deadline = time.monotonic() + 30
            while not any(k.startswith(f"q:{sub['id']}:") and c == 2 for k, (_, c) in (await _saved(
                    node.portico.store)).items()):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            redis_proc.kill()
            redis_proc.wait(10)
            redis_proc = start_redis(port)  # back, and empty
            await _usage_reaches(node, sub["id"], 2)
            assert await calls(node, key, 2) == [200, 429]
    finally:
        redis_proc.kill()
        redis_proc.wait(10)


async def _saved(store: Store) -> dict[str, tuple[int, int]]:
    async with store.read() as tx:
        rows = (await tx.connection.execute(select(quota_counters))).all()
    return {r._mapping["key"]: (r._mapping["window_start"], r._mapping["count"]) for r in rows}


async def test_nodes_sharing_a_database_save_at_once(store: Store) -> None:
    """Two nodes' savers run at the same moment: neither fails on a duplicate key; within one
    window the higher count is kept, and a later window replaces an earlier one."""
    day = window_for(int(time.time() * 1000), 1, "days")
    minute = window_for(int(time.time() * 1000) + 120_000, 1, "minutes")  # a later window of another key
    a, b = MemoryCounters(), MemoryCounters()
    for i in range(200):
        await a.add(f"q:app{i}:1", day, 3)
        await b.add(f"q:app{i}:1", day, 5)
    await a.add("q:moved:1", day, 9)
    await b.add("q:moved:1", minute, 1)
    savers = [QuotaSurvival(store, a, "q:", 60), QuotaSurvival(store, b, "q:", 60)]
    for _ in range(3):
        await asyncio.gather(*(s.save() for s in savers))
    saved = await _saved(store)
    assert len(saved) == 201 and all(saved[f"q:app{i}:1"] == (day.start_ms, 5) for i in range(200))
    assert saved["q:moved:1"] == (minute.start_ms, 1)


async def test_many_keys_are_saved(store: Store) -> None:
    """More keys than a statement takes parameters (PostgreSQL: 32767)."""
    window = window_for(int(time.time() * 1000), 1, "days")
    counters = MemoryCounters()
    for i in range(40_000):
        await counters.add(f"q:app{i}:1", window, 2)
    await QuotaSurvival(store, counters, "q:", 60).save()
    await counters.add("q:app7:1", window, 1)
    await QuotaSurvival(store, counters, "q:", 60).save()
    saved = await _saved(store)
    assert len(saved) == 40_000 and saved["q:app7:1"] == (window.start_ms, 3)
