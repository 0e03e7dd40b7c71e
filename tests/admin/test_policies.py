"""Policies, policy actions, stages and templates through the management API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


def action(template: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"policyAction": {"names": [{"value": template, "locale": "English"}], "templateKey": template,
                             "parameters": parameters}}


async def test_action_crud(node: Node) -> None:
    r = await node.admin.post("/policyActions", json=action("entryProtocolPolicy", [
        {"templateKey": "protocol", "values": ["http"]}]))
    assert r.status_code == 201, r.text
    created = r.json()["policyAction"]
    assert (await node.admin.get(f"/policyActions/{created['id']}")).json()["policyAction"] == created
    updated = await node.admin.put(f"/policyActions/{created['id']}", json=action("entryProtocolPolicy", [
        {"templateKey": "protocol", "values": ["http", "https"]}]))
    assert updated.status_code == 200 and updated.json()["policyAction"]["parameters"][0]["values"] == ["http", "https"]
    change = await node.admin.put(f"/policyActions/{created['id']}", json=action("evaluatePolicy", []))
    assert change.status_code == 400
    assert await node.user_ids("/policyActions", "policyAction") == [created["id"]]
    assert (await node.admin.delete(f"/policyActions/{created['id']}")).status_code == 204
    assert (await node.admin.get(f"/policyActions/{created['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (action("notAPolicy", []), "not supported"),
        (action("entryProtocolPolicy", [{"templateKey": "protocol", "values": ["ftp"]}]), "protocol"),
        (action("entryProtocolPolicy", [{"templateKey": "bogus", "values": ["x"]}]), "bogus"),
        (action("straightThroughRouting", []), "endpointUri"),
        (action("straightThroughRouting", [{"templateKey": "endpointUri", "values": ["not a url"]}]), "endpointUri"),
        (action("straightThroughRouting", [{"templateKey": "endpointUri", "values": ["http://h"]},
                                           {"templateKey": "readTimeout", "values": ["-1"]}]), "readTimeout"),
        (action("evaluatePolicy", [{"templateKey": "logicalConnector", "values": ["XOR"]}]), "logicalConnector"),
        (action("evaluatePolicy", [{"templateKey": "IdentificationRule", "parameters": [
            {"templateKey": "identificationType", "values": ["telepathy"]}]}]), "identificationType"),
        (action("evaluatePolicy", [{"templateKey": "allowAnonymous", "values": ["true"]}]), "IdentificationRule"),
        ({"policyAction": {"templateKey": "entryProtocolPolicy", "parameters": "x"}}, "parameters"),
        ({"policyAction": {"parameters": []}}, "templateKey"),
    ],
)
async def test_bad_action_config_is_400_naming_the_field(node: Node, body: dict[str, Any], fragment: str) -> None:
    r = await node.admin.post("/policyActions", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["errorDetails"]
    assert await node.user_ids("/policyActions", "policyAction") == []


async def test_policy_update_validates_stages_and_actions(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    pid = api["policies"][0]
    policy = (await node.admin.get(f"/policies/{pid}")).json()["policy"]
    assert policy["policyScope"] == "SERVICE" and policy["names"][0]["value"] == "Default Policy for API Echo"
    unknown_stage = await node.admin.put(f"/policies/{pid}", json={"policy": {"policyEnforcements": [
        {"stageKey": "nowhere", "enforcements": []}]}})
    assert unknown_stage.status_code == 400 and "nowhere" in unknown_stage.json()["errorDetails"]
    unknown_action = await node.admin.put(f"/policies/{pid}", json={"policy": {"policyEnforcements": [
        {"stageKey": "IAM", "enforcements": [{"enforcementObjectId": "ghost", "order": "0"}]}]}})
    assert unknown_action.status_code == 400 and "ghost" in unknown_action.json()["errorDetails"]
    entry = next(s for s in policy["policyEnforcements"] if s["stageKey"] == "transport")
    wrong_stage = await node.admin.put(f"/policies/{pid}", json={"policy": {"policyEnforcements": [
        {"stageKey": "IAM", "enforcements": entry["enforcements"]}]}})
    assert wrong_stage.status_code == 400 and "transport" in wrong_stage.json()["errorDetails"]
    assert (await node.admin.get(f"/policies/{pid}")).json()["policy"] == policy
    in_use = await node.admin.delete(f"/policyActions/{entry['enforcements'][0]['enforcementObjectId']}")
    assert in_use.status_code == 400 and pid in in_use.json()["errorDetails"]
    assert (await node.admin.get("/policies/none")).status_code == 404
    assert await node.user_ids("/policies", "policy") == [pid]


async def test_stages_and_templates(node: Node) -> None:
    stages = (await node.admin.get("/policyStages")).json()["policyStages"]
    keys = [s["stageKey"] for s in stages]
    order = ["transport", "IAM", "requestPayloadProcessing", "routing", "LMT", "responseProcessing",
             "responseFaultProcessing"]
    assert [k for k in keys if k in order] == order
    iam = next(s for s in stages if s["stageKey"] == "IAM")
    assert "evaluatePolicy" in iam["policyActionTemplates"]
    template = (await node.admin.get("/policyActionTemplates/evaluatePolicy")).json()["policyActionTemplate"]
    schema = template["schema"]
    assert template["stageKey"] == "IAM" and "IdentificationRule" in schema["properties"]
    assert schema["properties"]["logicalConnector"]["enum"] == ["OR", "AND"]
    assert (await node.admin.get("/policyActionTemplates/nope")).status_code == 404
    listed = (await node.admin.get("/policyActionTemplates")).json()["policyActionTemplates"]
    assert {t["templateKey"] for t in listed} >= {"entryProtocolPolicy", "evaluatePolicy", "straightThroughRouting"}
