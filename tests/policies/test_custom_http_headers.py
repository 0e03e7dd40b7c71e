"""customHttpHeaders: headers with variables reach the native service; config validation."""

from __future__ import annotations

from tests.gateway.test_runtime import add_action
from tests.policies.payload_support import bad_action, echo_spec, wire
from tests.support.node import Node
from tests.support.upstream import Upstream


async def test_headers_with_variables_reach_the_native_service(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    await add_action(node, api, "customHttpHeaders", "routing", wire({"header": [
        {"headerKey": "Accept", "headerValue": "application/json"},
        {"headerKey": "X-Caller", "headerValue": "${inboundIP}/${apiName}/${request.headers.x-user}"},
        {"headerKey": "X-Order", "headerValue": "${request.payload.jsonPath[$.order.id]}"},
    ]}))
    r = await node.gw.post("/Echo/1.0/echo", json={"order": {"id": 77}}, headers={"Accept": "text/html",
                                                                                    "X-User": "ann"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["headers"]["accept"] == "application/json"
    assert seen["headers"]["x-caller"] == "127.0.0.1/Echo/ann"
    assert seen["headers"]["x-order"] == "77"
    assert seen["body"] == '{"order":{"id":77}}'


async def test_config_validation(sqlite_node: Node) -> None:
    bad_name = await bad_action(sqlite_node, "customHttpHeaders", wire({"header": [
        {"headerKey": "Bad Name", "headerValue": "x"}]}))
    assert bad_name.startswith("customHttpHeaders: parameter 'header.headerKey'") and "valid header name" in bad_name
    bad_value = await bad_action(sqlite_node, "customHttpHeaders", wire({"header": [
        {"headerKey": "X-A", "headerValue": "a\r\nInjected: 1"}]}))
    assert bad_value.startswith("customHttpHeaders: parameter 'header.headerValue'")
    assert (await bad_action(sqlite_node, "customHttpHeaders", [])).startswith("customHttpHeaders: parameter 'header'")
