"""Plan enforcement (portico/gateway/plan_gate.py) at quota window boundaries: the usage figures
of one window agree with the calls admitted in it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.admin.test_packages import KEY, attach, make_package, subscribe
from tests.policies.test_throttle import REDIS_URL, throttle
from tests.support.node import Node, running_node
from tests.support.upstream import Upstream, spec_for


@pytest.fixture(params=["memory", "redis"])
async def backend_node(request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    redis = {"redis_url": REDIS_URL, "redis_prefix": f"portico-test:{uuid.uuid4().hex}:"}
    async with running_node(sqlite_url, tmp_path / "data", **(redis if request.param == "redis" else {})) as n:
        yield n


async def test_a_call_in_flight_across_a_window_boundary_is_tallied_in_its_own_window(
        backend_node: Node, upstream: Upstream) -> None:
    node = backend_node
    api = await node.create_api(spec_for(upstream.url))
    plan = (await node.admin.post("/plans", json={"name": "P"})).json()["planResponse"]
    await attach(node, plan["quota"]["enforcementPolicy"], "throttle", throttle(100, 4, "seconds"))
    package = await make_package(node, [api["id"]], [plan["id"]])
    sub = await subscribe(node, package["id"], plan["id"])
    key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    await asyncio.sleep(4 - (time.time() % 4) + 3.0)  # about 1 s before a 4 s boundary
    slow = asyncio.create_task(node.gw.get("/Echo/1.0/slow/2.5", headers={KEY: key}))  # ends in the next window
    await asyncio.sleep(4 - (time.time() % 4) + 0.1)  # just after the boundary
    fast = [(await node.gw.get("/Echo/1.0/echo", headers={KEY: key})).status_code for _ in range(3)]
    assert (await slow).status_code == 200 and fast == [200] * 3
    await asyncio.sleep(0.3)  # tallies are written after the response
    usage = (await node.admin.get(f"/subscriptions/{sub['id']}/usage")).json()
    # The slow call, admitted before the boundary, is neither counted in this window's quota nor
    # in its successes (or, on a slow machine, admitted after it: in both); its late tally leaves
    # this window's figures alone.
    assert usage["successCount"] == usage["usedQuota"] >= 3 and usage["failureCount"] == 0, usage
