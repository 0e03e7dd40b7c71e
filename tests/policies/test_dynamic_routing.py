"""dynamicRouting: endpoint from a header or from variables, default otherwise."""

from __future__ import annotations

from tests.gateway.test_runtime import add_action
from tests.policies.routing_support import assert_rejected, group, route_to, values
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def test_header_and_context_rules(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "dynamicRouting", "routing", [
        route_to(f"{upstream.url}/echo/default"),
        group("dynamicRule", values(routingConditionKey="header", headerName="X-Route-To")),
        group("dynamicRule", values(routingConditionKey="context"), group("dynRouteTo", values(
            dynEndpointUri="http://127.0.0.1:${request.query.port}/echo/ctx", readTimeout="5"))),
    ])
    r = await node.gw.get("/Echo/1.0/echo", headers={"x-route-to": f"{upstream.url}/echo/dyn"})
    assert r.json()["path"] == "/echo/dyn" and "x-route-to" not in r.json()["headers"]
    r = await node.gw.get("/Echo/1.0/echo", params={"port": str(upstream.port)})
    assert r.json()["path"] == "/echo/ctx"
    assert (await node.gw.get("/Echo/1.0/echo")).json()["path"] == "/echo/default"
    r = await node.gw.get("/Echo/1.0/echo", headers={"x-route-to": "file:///etc/passwd"})
    assert r.status_code == 400 and "URL" in r.json()["Exception"]


async def test_config_validation(node: Node) -> None:
    key = "dynamicRouting"
    await assert_rejected(node, key, [group("dynamicRule", values(routingConditionKey="header",
                                                                      headerName="x"))], "routeTo")
    await assert_rejected(node, key, [route_to("http://x/"), group("dynamicRule", values(
        routingConditionKey="cookie"))], "routingConditionKey")
    await assert_rejected(node, key, [route_to("http://x/"), group("dynamicRule", values(
        routingConditionKey="header"))], "headerName")
    await assert_rejected(node, key, [route_to("http://x/"), group("dynamicRule", values(
        routingConditionKey="context"))], "dynEndpointUri")
    await assert_rejected(node, key, [route_to("http://x/"), group("dynamicRule", values(
        routingConditionKey="context"), group("dynRouteTo", values(dynEndpointUri="gopher://x")))], "dynEndpointUri")
