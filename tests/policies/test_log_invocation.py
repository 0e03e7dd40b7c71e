"""logInvocation: payloads and headers in the transaction event, by frequency."""

from __future__ import annotations

import time
from typing import Any

from tests.gateway.test_runtime import add_action
from tests.policies.routing_support import assert_rejected, group, values
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def _events(node: Node, api_id: str) -> list[dict[str, Any]]:
    await node.portico.events.flush()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    r = await node.admin.get("/transactionalEvents/_search", params={"apiId": api_id, "fromDate": day, "toDate": day})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["transaction"]
    return events


async def test_payloads_and_headers_are_stored(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "logInvocation", "LMT", [
        *values(storeRequestHeaders="false", storeRequestPayload="true", storeResponseHeaders="true",
                storeResponsePayload="true", logGenerationFrequency="Always"),
        group("destination", values(destinationType="GATEWAY")),
        group("destination", values(destinationType="localLog", logLevel="Info"))])
    r = await node.gw.post("/Echo/1.0/echo", content=b'{"hello": "world"}', headers={"x-trace": "1"})
    assert r.status_code == 200 and r.json()["body"] == '{"hello": "world"}'
    (event,) = await _events(node, api["id"])
    assert event["reqPayload"] == '{"hello": "world"}'
    assert event["resPayload"] == r.text
    assert {k.lower(): v for k, v in event["responseHeaders"].items()}["content-type"] == "application/json"
    assert "requestHeaders" not in event


async def test_frequency_on_failure_only(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "logInvocation", "LMT", values(
        storeRequestPayload="true", storeResponsePayload="true", logGenerationFrequency="OnFailure"))
    assert (await node.gw.put("/Echo/1.0/echo", content=b"fine")).status_code == 200
    assert (await node.gw.get("/Echo/1.0/status/500")).status_code == 500
    events = {e["responseCode"]: e for e in await _events(node, api["id"])}
    assert "reqPayload" not in events["200"] and "resPayload" not in events["200"]
    assert events["500"]["resPayload"] == '{"status": 500}'
    assert "requestHeaders" in events["200"]  # storeRequestHeaders defaults to true


async def test_apis_without_the_policy_stream_and_log_no_payload(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    assert (await node.gw.post("/Echo/1.0/echo", content=b"x")).status_code == 200
    (event,) = await _events(node, api["id"])
    assert "reqPayload" not in event and "resPayload" not in event


async def test_config_validation(node: Node) -> None:
    await assert_rejected(node, "logInvocation", values(storeRequestPayload="maybe"), "storeRequestPayload")
    await assert_rejected(node, "logInvocation", values(logGenerationFrequency="Sometimes"), "logGenerationFrequency")
    await assert_rejected(node, "logInvocation", [group("destination", values(destinationType="Kafka"))],
                          "destinationType")
    await assert_rejected(node, "logInvocation", [group("destination", values(
        destinationType="localLog", logLevel="Loud"))], "logLevel")


async def test_logged_payloads_are_masked_like_the_forwarded_ones(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "requestDataMasking", "requestPayloadProcessing", [
        {"templateKey": "jpathMasking", "parameters": [{"templateKey": "maskingCriteria", "parameters": [
            {"templateKey": "action", "values": ["$.card"]},
            {"templateKey": "maskingType", "values": ["mask"]},
            {"templateKey": "maskValue", "values": ["****"]}]}]},
        {"templateKey": "applyForPayload", "values": ["false"]},
        {"templateKey": "sameForTransactionalLogging", "values": ["true"]},
    ])
    await add_action(node, api, "logInvocation", "LMT", [{"templateKey": "storeRequestPayload", "values": ["true"]}])
    r = await node.gw.post("/Echo/1.0/echo", json={"card": "4111111111111111", "name": "x"})
    assert r.status_code == 200 and "4111111111111111" in r.json()["body"]  # forwarded as is
    await node.portico.events.flush()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    events = (await node.admin.get("/transactionalEvents/_search", params={
        "apiId": api["id"], "fromDate": day, "toDate": day})).json()["transaction"]
    logged = events[0]["reqPayload"]
    assert "4111111111111111" not in logged and "****" in logged
