"""Quota survival (portico/counters/survival.py) when the counter store fails: a node whose Redis
is down at start still starts, and restores the saved counts once Redis is back."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from tests.admin.test_packages import calls, setup_package
from tests.policies.test_throttle import start_redis
from tests.support.node import running_node
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
            deadline = time.monotonic() + 30
            while True:  # the saved count (2) comes back without a restart
                r = await node.admin.get(f"/subscriptions/{sub['id']}/usage")
                if r.status_code == 200 and r.json()["usedQuota"] == 2:
                    break
                assert time.monotonic() < deadline, r.text
                await asyncio.sleep(0.2)
            assert await calls(node, key, 2) == [200, 429]
    finally:
        redis_proc.kill()
        redis_proc.wait(10)
