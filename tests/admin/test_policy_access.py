"""Policy routes check the privilege that matches the policy's kind, and the team rule
(admin/policy_access.py): global policies need "Manage global policies", an API's policies "Manage
APIs" and a visible API, a plan's "Manage packages and plans"; policy actions follow their policies."""

from __future__ import annotations

from typing import Any

import httpx

from portico.security import privileges as priv
from tests.admin.teams_support import add_user, client, make_api, make_plan, make_team, set_team_work
from tests.support.node import Node


def _policy(kind: str, **extra: Any) -> dict[str, Any]:
    return {"policy": {"names": [{"value": f"{kind} policy"}], "policyScope": kind, "policyEnforcements": [],
                       **extra}}


async def _actions_of(c: httpx.AsyncClient, policy_id: str) -> list[str]:
    r = await c.get(f"/policies/{policy_id}")
    assert r.status_code == 200, r.text
    return [e["enforcementObjectId"] for s in r.json()["policy"]["policyEnforcements"] for e in s["enforcements"]]


async def _throttle(c: httpx.AsyncClient) -> str:
    r = await c.post("/policyActions", json={"policyAction": {"templateKey": "throttle", "names": [], "parameters": [
        {"templateKey": "throttleRule", "parameters": [{"templateKey": "throttleRuleName", "values": ["requestCount"]},
                                                       {"templateKey": "monitorRuleOperator", "values": ["GT"]},
                                                       {"templateKey": "value", "values": ["5"]}]},
        {"templateKey": "alertInterval", "values": ["1"]}, {"templateKey": "alertIntervalUnit", "values": ["minutes"]},
        {"templateKey": "alertFrequency", "values": ["once"]}]}})
    assert r.status_code == 201, r.text
    action_id: str = r.json()["policyAction"]["id"]
    return action_id


async def test_global_policies_need_their_own_privilege(node: Node) -> None:
    await add_user(node, "api-only")
    await add_user(node, "global-only")
    await make_team(node, "Apis", [priv.MANAGE_APIS], users=["api-only"])
    await make_team(node, "Globals", [priv.MANAGE_GLOBAL_POLICIES], users=["global-only"])
    async with client(node, "api-only") as api_only, client(node, "global-only") as global_only:
        r = await api_only.post("/policies", json=_policy("GLOBAL"))
        assert r.status_code == 403 and priv.MANAGE_GLOBAL_POLICIES in r.json()["errorDetails"]
        assert await node.user_ids("/policies", "policy") == []
        r = await global_only.post("/policies", json=_policy("GLOBAL"))
        assert r.status_code == 201, r.text
        pid = r.json()["policy"]["id"]
        r = await api_only.put(f"/policies/{pid}", json={"policy": {"names": [{"value": "taken"}]}})
        assert r.status_code == 403 and priv.MANAGE_GLOBAL_POLICIES in r.json()["errorDetails"]
        r = await api_only.delete(f"/policies/{pid}")
        assert r.status_code == 403 and priv.MANAGE_GLOBAL_POLICIES in r.json()["errorDetails"]
        r = await global_only.put(f"/policies/{pid}", json={"policy": {"names": [{"value": "renamed"}]}})
        assert r.status_code == 200, r.text
        r = await global_only.put(f"/policies/{pid}/activate")   # activation has a privilege of its own
        assert r.status_code == 403 and priv.ACTIVATE_GLOBAL_POLICIES in r.json()["errorDetails"]

        # an API's policies are the API's: "Manage APIs", not "Manage global policies"
        api = await make_api(node.admin, "alpha")
        r = await global_only.post(f"/policies?apiId={api['id']}", json=_policy(
            "RESOURCE", scope={"resourcePath": "/items", "methods": ["GET"]}))
        assert r.status_code == 403 and priv.MANAGE_APIS in r.json()["errorDetails"]
        r = await global_only.put(f"/policies/{api['policies'][0]}", json={"policy": {"names": [{"value": "x"}]}})
        assert r.status_code == 403 and priv.MANAGE_APIS in r.json()["errorDetails"]
        for action_id in await _actions_of(node.admin, api["policies"][0]):
            r = await global_only.put(f"/policyActions/{action_id}", json={"policyAction": {"names": []}})
            assert r.status_code == 403 and priv.MANAGE_APIS in r.json()["errorDetails"]
            r = await global_only.delete(f"/policyActions/{action_id}")
            assert r.status_code == 403 and priv.MANAGE_APIS in r.json()["errorDetails"]
        r = await api_only.post(f"/policies?apiId={api['id']}", json=_policy(
            "RESOURCE", scope={"resourcePath": "/items", "methods": ["GET"]}))
        assert r.status_code == 201, r.text
        assert (await api_only.delete(f"/policies/{r.json()['policy']['id']}")).status_code == 204
    assert (await node.admin.delete(f"/policies/{pid}")).status_code == 204


async def test_plan_policies_go_with_packages_and_plans(sqlite_node: Node) -> None:
    node = sqlite_node
    await add_user(node, "api-only")
    await add_user(node, "planner")
    await make_team(node, "Apis", [priv.MANAGE_APIS], users=["api-only"])
    await make_team(node, "Planners", [priv.MANAGE_PACKAGES], users=["planner"])
    plan = await make_plan(node.admin, "gold")
    rate_policy = plan["policies"][0]
    async with client(node, "api-only") as api_only, client(node, "planner") as planner:
        action = await _throttle(planner)   # a free action: any holder of the route's privileges
        change = {"policy": {"policyEnforcements": [{"stageKey": "throttle", "enforcements": [
            {"enforcementObjectId": action, "order": "0"}]}]}}
        r = await api_only.put(f"/policies/{rate_policy}", json=change)
        assert r.status_code == 403 and priv.MANAGE_PACKAGES in r.json()["errorDetails"]
        r = await planner.put(f"/policies/{rate_policy}", json=change)
        assert r.status_code == 200, r.text
        r = await api_only.put(f"/policyActions/{action}", json={"policyAction": {"names": []}})
        assert r.status_code == 403 and priv.MANAGE_PACKAGES in r.json()["errorDetails"]
        r = await planner.put(f"/policyActions/{action}", json={"policyAction": {"names": [{"value": "limit"}]}})
        assert r.status_code == 200, r.text


async def test_policies_of_an_invisible_api_are_out_of_reach(node: Node) -> None:
    """Team work on: bob (Manage APIs in TeamB) cannot see, read, change or extend alice's API's policies."""
    await add_user(node, "alice")
    await add_user(node, "bob")
    await make_team(node, "TeamA", [priv.MANAGE_APIS], users=["alice"])
    await make_team(node, "TeamB", [priv.MANAGE_APIS], users=["bob"])
    await set_team_work(node, True)
    async with client(node, "alice") as alice, client(node, "bob") as bob:
        api = await make_api(alice, "alpha", teams=["TeamA"])
        own_policy = api["policies"][0]
        action_ids = await _actions_of(alice, own_policy)
        assert action_ids
        listed = (await bob.get("/policyActions")).json()["policyAction"]
        assert not {a["id"] for a in listed} & set(action_ids)
        shown = {a["id"] for a in (await alice.get("/policyActions")).json()["policyAction"]}
        assert set(action_ids) <= shown
        for action_id in action_ids:
            for r in (await bob.get(f"/policyActions/{action_id}"),
                      await bob.put(f"/policyActions/{action_id}", json={"policyAction": {"names": []}}),
                      await bob.delete(f"/policyActions/{action_id}")):
                assert r.status_code == 404, r.text
            assert (await alice.get(f"/policyActions/{action_id}")).status_code == 200
        assert (await bob.get(f"/policies/{own_policy}")).status_code == 404
        assert (await bob.put(f"/policies/{own_policy}", json={"policy": {"names": [{"value": "x"}]}})
                ).status_code == 404
        r = await bob.post(f"/policies?apiId={api['id']}", json=_policy(
            "RESOURCE", scope={"resourcePath": "/items", "methods": ["GET"]}))
        assert r.status_code == 404, r.text
        # bob's own policy cannot borrow an action of alice's API
        mine = await make_api(bob, "beta", teams=["TeamB"])
        r = await bob.put(f"/policies/{mine['policies'][0]}", json={"policy": {"policyEnforcements": [
            {"stageKey": "routing", "enforcements": [{"enforcementObjectId": action_ids[-1], "order": "0"}]}]}})
        assert r.status_code == 400 and action_ids[-1] in r.json()["errorDetails"]
        # alice manages her API's policies
        r = await alice.post(f"/policies?apiId={api['id']}", json=_policy(
            "RESOURCE", scope={"resourcePath": "/items", "methods": ["GET"]}))
        assert r.status_code == 201, r.text
        assert (await bob.delete(f"/policies/{r.json()['policy']['id']}")).status_code == 404
        assert (await alice.delete(f"/policies/{r.json()['policy']['id']}")).status_code == 204
    r = await node.admin.get(f"/policyActions/{action_ids[0]}")   # administrators see all
    assert r.status_code == 200
