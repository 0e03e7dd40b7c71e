"""Plan enforcement (portico/gateway/plan_gate.py) at quota window boundaries: the usage figures
of one window agree with the calls admitted in it."""

from __future__ import annotations

import asyncio
import time

from tests.admin.test_packages import KEY, attach, make_package, subscribe
from tests.policies.test_throttle import throttle
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def test_a_call_in_flight_across_a_window_boundary_is_tallied_in_its_own_window(
        sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    plan = (await node.admin.post("/plans", json={"name": "P"})).json()["planResponse"]
    await attach(node, plan["quota"]["enforcementPolicy"], "throttle", throttle(100, 4, "seconds"))
    package = await make_package(node, [api["id"]], [plan["id"]])
    sub = await subscribe(node, package["id"], plan["id"])
    key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    await asyncio.sleep(4 - (time.time() % 4) + 3.0)  # about 1 s before a 4 s boundary
    r = await node.gw.get("/Echo/1.0/slow/2.5", headers={KEY: key})  # ends in the next window
    assert r.status_code == 200
    await asyncio.sleep(0.3)  # tallies are written after the response
    usage = (await node.admin.get(f"/subscriptions/{sub['id']}/usage")).json()
    # Admitted before the boundary: neither counted in this window's quota nor in its successes
    # (or, on a slow machine, admitted after it: both).
    assert usage["successCount"] == usage["usedQuota"] and usage["failureCount"] == 0, usage
