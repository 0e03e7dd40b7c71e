"""Global policies and resource/method-level policies, end to end through the gateway."""

from __future__ import annotations

from typing import Any

from tests.gateway.test_runtime import API_KEY_RULE, key_of, new_app, rules
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def action(node: Node, template: str, parameters: list[Any]) -> str:
    r = await node.admin.post("/policyActions", json={"policyAction": {"templateKey": template,
                                                                       "parameters": parameters}})
    assert r.status_code == 201, r.text
    action_id: str = r.json()["policyAction"]["id"]
    return action_id


def body(stage: str, action_id: str, **extra: Any) -> dict[str, Any]:
    return {"policy": {"names": [{"value": "p", "locale": "English"}],
                       "policyEnforcements": [{"stageKey": stage, "enforcements": [
                           {"enforcementObjectId": action_id, "order": "0"}]}], **extra}}


async def test_global_policy_applies_to_matching_apis_when_active(node: Node, upstream: Upstream) -> None:
    echo = await node.create_api(spec_for(upstream.url))
    other = await node.create_api(spec_for(upstream.url, "Other"))
    identify = await action(node, "evaluatePolicy", API_KEY_RULE)
    scope = {"applicableAPITypes": ["REST"], "logicalConnector": "AND", "scopeConditions": [
        {"filterType": "API", "attributes": [{"attributeName": "API_NAME", "operation": "EQUALS", "value": "Echo"}]}]}
    r = await node.admin.post("/policies", json=body("IAM", identify, policyScope="GLOBAL", scope=scope))
    assert r.status_code == 201, r.text
    pid = r.json()["policy"]["id"]
    assert r.json()["policy"]["global"] is True and r.json()["policy"]["active"] is False
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200  # inactive: no effect
    assert (await node.admin.put(f"/policies/{pid}/activate")).status_code == 200
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 403
    assert (await node.gw.get("/Other/1.0/echo")).status_code == 200
    app = await new_app(node, [echo["id"]])
    assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(app)})).status_code == 200
    applicable = (await node.admin.get(f"/policies/{pid}/apis")).json()["apiResponse"]
    assert [a["api"]["id"] for a in applicable] == [echo["id"]]
    on_echo = (await node.admin.get(f"/apis/{echo['id']}/globalPolicies")).json()["policy"]
    assert [p["id"] for p in on_echo] == [pid]
    assert (await node.admin.get(f"/apis/{other['id']}/globalPolicies")).json()["policy"] == []
    assert (await node.admin.get(f"/policies/{pid}/conflicts")).status_code == 200
    assert (await node.admin.delete(f"/policies/{pid}")).status_code == 400  # active
    assert (await node.admin.put(f"/policies/{pid}/deactivate")).status_code == 200
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
    assert (await node.admin.delete(f"/policies/{pid}")).status_code == 204
    assert (await node.admin.get(f"/policies/{pid}")).status_code == 404


async def test_conflicting_global_policies_are_reported(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    first = (await node.admin.post("/policies", json=body("IAM", await action(node, "evaluatePolicy", API_KEY_RULE),
                                                          policyScope="GLOBAL"))).json()["policy"]["id"]
    await node.admin.put(f"/policies/{first}/activate")
    second = (await node.admin.post("/policies", json=body(
        "IAM", await action(node, "evaluatePolicy", rules("ipAddressRange")), policyScope="GLOBAL"))).json()
    r = await node.admin.get(f"/policies/{second['policy']['id']}/conflicts")
    assert r.status_code == 500 and r.json()["conflicts"][0]["templateKey"] == "evaluatePolicy"


async def test_http_method_condition_scopes_a_global_policy(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    identify = await action(node, "evaluatePolicy", API_KEY_RULE)
    scope = {"scopeConditions": [{"filterType": "HTTP_METHOD", "attributes": [
        {"attributeName": "POST", "operation": "EQUALS", "value": ""}]}]}
    pid = (await node.admin.post("/policies", json=body("IAM", identify, policyScope="GLOBAL", scope=scope))
           ).json()["policy"]["id"]
    await node.admin.put(f"/policies/{pid}/activate")
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
    assert (await node.gw.post("/Echo/1.0/echo", content=b"x")).status_code == 403


async def test_resource_and_method_level_policies(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    identify = await action(node, "evaluatePolicy", API_KEY_RULE)
    r = await node.admin.post(f"/policies?apiId={api['id']}", json=body(
        "IAM", identify, policyScope="METHOD", scope={"resourcePath": "/echo", "methods": ["POST"]}))
    assert r.status_code == 201, r.text
    assert (await node.gw.post("/Echo/1.0/echo", content=b"x")).status_code == 403
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
    assert (await node.gw.get("/Echo/1.0/echo/1")).status_code == 200
    routing = await action(node, "straightThroughRouting", [
        {"templateKey": "endpointUri", "values": [f"{upstream.url}/echo/from-resource"]}])
    r = await node.admin.post(f"/policies?apiId={api['id']}", json=body(
        "routing", routing, policyScope="RESOURCE", scope={"resourcePath": "/echo/{id}"}))
    assert r.status_code == 201, r.text
    assert (await node.gw.get("/Echo/1.0/echo/1")).json()["path"] == "/echo/from-resource"
    assert (await node.gw.get("/Echo/1.0/echo")).json()["path"] == "/echo"
    stored = (await node.admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]
    assert len(stored["policies"]) == 3


async def test_bad_policy_requests(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    identify = await action(node, "evaluatePolicy", API_KEY_RULE)
    cases = [
        ("/policies", body("IAM", identify, policyScope="SERVICE"), "policyScope"),
        ("/policies", body("IAM", "ghost", policyScope="GLOBAL"), "ghost"),
        ("/policies", body("nowhere", identify, policyScope="GLOBAL"), "nowhere"),
        ("/policies", body("routing", identify, policyScope="GLOBAL"), "cannot run in stage routing"),
        ("/policies", body("IAM", identify, policyScope="GLOBAL", scope={"logicalConnector": "XOR"}), "scope"),
        ("/policies", body("IAM", identify, policyScope="RESOURCE", scope={"resourcePath": "/echo"}), "apiId"),
        (f"/policies?apiId={api['id']}", body("IAM", identify, policyScope="RESOURCE", scope={}), "resourcePath"),
        (f"/policies?apiId={api['id']}", body("IAM", identify, policyScope="RESOURCE",
                                              scope={"resourcePath": "/nope"}), "/nope"),
        (f"/policies?apiId={api['id']}", body("IAM", identify, policyScope="METHOD",
                                              scope={"resourcePath": "/echo"}), "methods"),
    ]
    for path, payload, fragment in cases:
        r = await node.admin.post(path, json=payload)
        assert r.status_code == 400, (payload, r.text)
        assert fragment in r.json()["errorDetails"], r.text
    assert await node.user_ids("/policies", "policy") == api["policies"]
    own = api["policies"][0]
    assert (await node.admin.put(f"/policies/{own}/activate")).status_code == 400
    assert (await node.admin.get(f"/policies/{own}/apis")).status_code == 400
    assert (await node.admin.delete(f"/policies/{own}")).status_code == 400
    assert (await node.admin.delete("/policies/GlobalLogInvocationPolicy")).status_code == 400


async def test_builtin_transaction_logging_policy(node: Node, upstream: Upstream) -> None:
    builtin = (await node.admin.get("/policies/GlobalLogInvocationPolicy")).json()["policy"]
    assert builtin["names"][0]["value"] == "Transaction logging" and builtin["global"] and not builtin["active"]
    assert (await node.admin.put("/policies/GlobalLogInvocationPolicy/activate")).status_code == 200
    assert (await node.admin.get("/policies/GlobalLogInvocationPolicy")).json()["policy"]["active"] is True
