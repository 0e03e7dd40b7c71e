"""loadBalancerRouting: round robin, failover on downtime errors or any fault, all down -> 503."""

from __future__ import annotations

import socket
import time

from tests.gateway.test_runtime import add_action
from tests.policies.routing_support import assert_rejected, group, values
from tests.support.node import Node
from tests.support.upstream import Upstream, running_upstream, spec_for


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _lb(*uris: str, **fields: str) -> list[dict[str, object]]:
    return [group("lbRouteTo", values(endpointUri=u, **fields)) for u in uris]


async def _set_failover_downtime_only(node: Node, value: str) -> None:
    r = await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"pg.lb.failoverOnDowntimeErrorOnly": value}}})
    assert r.status_code == 200, r.text
    await node.reload()


async def test_round_robin_over_two_upstreams(node: Node, upstream: Upstream) -> None:
    with running_upstream() as second:
        api = await node.create_api(spec_for(upstream.url))
        await add_action(node, api, "loadBalancerRouting", "routing", _lb(
            f"{upstream.url}/${{sys:resource_path}}", f"{second.url}/${{sys:resource_path}}"))
        hosts = []
        for _ in range(4):
            r = await node.gw.post("/Echo/1.0/echo", content=b"payload")
            assert r.status_code == 200 and r.json()["body"] == "payload"
            hosts.append(r.json()["headers"]["host"])
        ports = [h.rsplit(":", 1)[1] for h in hosts]
        assert ports[0] != ports[1] and ports[0] == ports[2] and ports[1] == ports[3]
        assert set(ports) == {str(upstream.port), str(second.port)}


async def test_failover_on_connection_refused_and_all_down(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "loadBalancerRouting", "routing", _lb(
        f"{_dead_url()}/${{sys:resource_path}}", f"{upstream.url}/${{sys:resource_path}}"))
    for _ in range(4):
        r = await node.gw.post("/Echo/1.0/echo", content=b"again")
        assert r.status_code == 200 and r.json()["body"] == "again"
    api2 = await node.create_api(spec_for(upstream.url, title="Down"))
    await add_action(node, api2, "loadBalancerRouting", "routing", _lb(_dead_url(), _dead_url()))
    r = await node.gw.get("/Down/1.0/echo")
    assert r.status_code == 503 and "endpoints" in r.json()["Exception"]


async def test_failover_on_timeout(node: Node, upstream: Upstream) -> None:
    with running_upstream() as second:
        api = await node.create_api(spec_for(upstream.url))
        await add_action(node, api, "loadBalancerRouting", "routing", [
            group("lbRouteTo", values(endpointUri=f"{upstream.url}/slow/2", readTimeout="0.3")),
            group("lbRouteTo", values(endpointUri=f"{second.url}/echo"))])
        for _ in range(2):
            r = await node.gw.get("/Echo/1.0/echo")
            assert r.status_code == 200 and r.json()["headers"]["host"].endswith(str(second.port))


async def test_faults_fail_over_only_when_the_setting_says_so(node: Node, upstream: Upstream) -> None:
    with running_upstream() as second:
        api = await node.create_api(spec_for(upstream.url))
        await add_action(node, api, "loadBalancerRouting", "routing", _lb(
            f"{upstream.url}/status/500", f"{second.url}/echo"))
        statuses = sorted([(await node.gw.get("/Echo/1.0/echo")).status_code for _ in range(2)])
        assert statuses == [200, 500]  # downtime errors only (the default): a 500 is answered as is
        await _set_failover_downtime_only(node, "false")
        statuses = [(await node.gw.get("/Echo/1.0/echo")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 200]


async def test_suspended_endpoint_is_skipped(node: Node, upstream: Upstream) -> None:
    with running_upstream() as second:
        api = await node.create_api(spec_for(upstream.url))
        await add_action(node, api, "loadBalancerRouting", "routing", [
            group("lbRouteTo", values(endpointUri=f"{upstream.url}/slow/2", readTimeout="0.5",
                                      suspendDurationOnFailure="30")),
            group("lbRouteTo", values(endpointUri=f"{second.url}/echo"))])
        slow = 0
        for _ in range(6):
            t0 = time.perf_counter()
            assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
            slow += time.perf_counter() - t0 >= 0.5
        assert slow == 1  # only the first turn of the slow endpoint waited; then it was suspended


async def test_config_validation(node: Node) -> None:
    await assert_rejected(node, "loadBalancerRouting", [], "lbRouteTo")
    await assert_rejected(node, "loadBalancerRouting", _lb("mailto:x"), "endpointUri")
    await assert_rejected(node, "loadBalancerRouting", _lb("http://x/", readTimeout="-2"), "readTimeout")
    await assert_rejected(node, "loadBalancerRouting", _lb("http://x/", suspendDurationOnFailure="soon"),
                          "suspendDurationOnFailure")
    await assert_rejected(node, "loadBalancerRouting", [group("lbRouteTo", values(method="GET"))], "endpointUri")
