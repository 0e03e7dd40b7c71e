"""conditionalErrorProcessing end to end: criteria, messages by Accept, variables, native faults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.test_runtime import API_KEY_RULE, add_action
from tests.policies.spec_support import post_action
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


def messages(*items: tuple[str, str, bool], native: bool = False) -> dict[str, Any]:
    return {"templateKey": "customFailureMessages", "parameters": [
        {"templateKey": "sendNativeProviderFault", "values": [str(native).lower()]},
        *({"templateKey": "failureMessage", "parameters": [
            {"templateKey": "contentType", "values": [kind]},
            {"templateKey": "errortemplate", "values": [text]},
            {"templateKey": "useAsDefault", "values": [default]}]} for kind, text, default in items),
    ]}


def status_criteria(*codes: str) -> dict[str, Any]:
    return {"templateKey": "faultCriteria", "parameters": [
        {"templateKey": "statusCodeCriteria", "parameters": [{"templateKey": "statusCode", "values": list(codes)}]}]}


async def test_custom_message_by_status_with_variables(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", API_KEY_RULE)
    await add_action(node, api, "conditionalErrorProcessing", "responseFaultProcessing", [
        messages(("json", '{"error":"denied","api":"${apiName}","why":"$ERROR_MESSAGE"}', True),
                 ("xml", "<error api='${apiName}'>${request.headers.x-trace}</error>", False)),
        status_criteria("401", "403"),
    ])
    r = await node.gw.get("/Echo/1.0/echo")
    assert r.status_code == 403 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == "denied" and body["api"] == "Echo"
    assert body["why"].startswith("Unable to identify the application")
    r = await node.gw.get("/Echo/1.0/echo", headers={"Accept": "application/xml", "X-Trace": "t-1"})
    assert r.status_code == 403 and r.text == "<error api='Echo'>t-1</error>"
    assert r.headers["content-type"] == "application/xml"
    # Not covered by the criteria: the standard error.
    r = await node.gw.get("/Echo/1.0/nowhere")
    assert r.status_code == 404 and "Exception" in r.json()


async def test_native_fault_ranges_header_and_payload_criteria(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "conditionalErrorProcessing", "responseFaultProcessing", [
        messages(("text", "backend trouble ${path.id}", True)),
        status_criteria("5xx"),
        {"templateKey": "faultCriteria", "parameters": [{"templateKey": "headerCriteria", "parameters": [
            {"templateKey": "headerName", "values": ["X-Pretty"]},
            {"templateKey": "headerValue", "values": ["yes"]}]}]},
        {"templateKey": "faultCriteria", "parameters": [{"templateKey": "xpathCriteria", "parameters": [
            {"templateKey": "payloadIdentifier", "parameters": [
                {"templateKey": "expressionType", "values": ["jsonPath"]},
                {"templateKey": "expression", "values": ["$.status"]},
                {"templateKey": "value", "values": ["418"]}]}]}]},
    ])
    r = await node.gw.get("/Echo/1.0/status/502")
    assert r.status_code == 502 and r.text == "backend trouble 502"
    r = await node.gw.get("/Echo/1.0/status/404", headers={"X-Pretty": "yes"})
    assert r.status_code == 404 and r.text == "backend trouble 404"
    r = await node.gw.get("/Echo/1.0/status/418")  # matched on the native fault's payload
    assert r.status_code == 418 and r.text == "backend trouble 418"
    r = await node.gw.get("/Echo/1.0/status/404")  # no criterion holds
    assert r.status_code == 404 and "Exception" in r.json()


async def test_send_native_provider_fault(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "conditionalErrorProcessing", "responseFaultProcessing", [
        messages(native=True), status_criteria("400-499")])
    r = await node.gw.get("/Echo/1.0/status/409")
    assert r.status_code == 409 and r.json() == {"status": 409}


@pytest.mark.parametrize(("params", "field"), [
    ([], "customFailureMessages"),
    ([messages()], "failureMessage or sendNativeProviderFault"),
    ([messages(("yaml", "x", True))], "contentType"),
    ([messages(("json", "x", True)), status_criteria("99")], "statusCode"),
    ([messages(("json", "x", True)), {"templateKey": "faultCriteria", "parameters": [
        {"templateKey": "xpathCriteria", "parameters": [{"templateKey": "payloadIdentifier", "parameters": [
            {"templateKey": "expressionType", "values": ["xpath"]},
            {"templateKey": "expression", "values": ["//*["]}]}]}]}], "xpath"),
    ([messages(("json", "x", True)), {"templateKey": "preProcessingSteps", "parameters": [
        {"templateKey": "invokeESBParam", "parameters": [{"templateKey": "esbAlias", "values": ["x"]}]}]}],
     "preProcessingSteps"),
])
async def test_bad_config_is_400(sqlite_node: Node, params: list[Any], field: str) -> None:
    r = await post_action(sqlite_node, "conditionalErrorProcessing", params)
    assert r.status_code == 400 and field in r.json()["errorDetails"], r.text
