"""Packages, plans and subscriptions: the management API (every bad input), plan enforcement in
the gateway (rate limit and quota exact, quota reset on switch, usage), quota survival across a
restart, and one limit shared by two processes through Redis."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.policies.test_throttle import REDIS_URL, burst, throttle
from tests.support.node import Node, running_node
from tests.support.process import free_port, spawn, wait_healthy
from tests.support.upstream import Upstream, spec_for

KEY = "x-Gateway-APIKey"


async def make_plan(node: Node, name: str, rate: int | None = None, quota: int | None = None,
                    sla_quota: tuple[int, int] | None = None) -> dict[str, Any]:
    r = await node.admin.post("/plans", json={"name": name, "License": "Apache-2.0", "Terms": "t",
                                              "cost": {"value": "100USD"}})
    assert r.status_code == 201, r.text
    plan: dict[str, Any] = r.json()["planResponse"]
    if rate is not None:
        await attach(node, plan["policies"][0], "throttle", throttle(rate, 1, "hours"))
    if quota is not None:
        await attach(node, plan["quota"]["enforcementPolicy"], "throttle", throttle(quota, 1, "days"))
    if sla_quota is not None:
        await attach(node, plan["quota"]["enforcementPolicy"], "monitorSLA", None, sla_quota)
    return plan


async def attach(node: Node, policy_id: str, stage: str, params: list[dict[str, Any]] | None,
                 sla: tuple[int, int] | None = None) -> None:
    if sla is not None:
        action_id = await store_sla_action(node, *sla)
    else:
        r = await node.admin.post("/policyActions", json={"policyAction": {
            "names": [{"value": "Traffic Optimization", "locale": "en"}], "templateKey": "throttle",
            "parameters": params}})
        assert r.status_code == 201, r.text
        action_id = r.json()["policyAction"]["id"]
    r = await node.admin.put(f"/policies/{policy_id}", json={"policy": {"policyEnforcements": [
        {"stageKey": stage, "enforcements": [{"enforcementObjectId": action_id, "order": None}]}]}})
    assert r.status_code == 200, r.text


async def store_sla_action(node: Node, quota: int, notify: int) -> str:
    """A monitorSLA quota action in the reference's own shape (its POST /plans example)."""
    r = await node.admin.post("/policyActions", json={"policyAction": {
        "names": [{"value": "Monitor SLA", "locale": "en"}], "templateKey": "monitorSLA", "parameters": [
            {"templateKey": "monitorRules", "parameters": [
                {"templateKey": "monitorRuleName", "values": ["requestCount"]},
                {"templateKey": "monitorRuleOperator", "values": ["GT"]},
                {"templateKey": "value", "values": [str(quota)], "extendedProperties": [
                    {"key": "quota", "value": str(quota)}, {"key": "notifyPercent", "value": str(notify)}]}]},
            {"templateKey": "alertInterval", "values": ["1"]}, {"templateKey": "alertIntervalUnit", "values": ["days"]},
            {"templateKey": "consumerIds", "values": ["AnyConsumers"]}]}})
    assert r.status_code == 201, r.text
    action_id: str = r.json()["policyAction"]["id"]
    return action_id


def sla_params(quota: object, notify: object = "80", interval: str = "1") -> list[dict[str, Any]]:
    return [
        {"templateKey": "monitorRules", "parameters": [
            {"templateKey": "monitorRuleName", "values": ["requestCount"]},
            {"templateKey": "monitorRuleOperator", "values": ["GT"]},
            {"templateKey": "value", "values": ["150"], "extendedProperties": [
                {"key": "quota", "value": quota}, {"key": "notifyPercent", "value": notify}]}]},
        {"templateKey": "alertInterval", "values": [interval]},
        {"templateKey": "alertIntervalUnit", "values": ["days"]}]


@pytest.mark.parametrize(("params", "fragment"), [
    (sla_params("-5"), "'quota' must not be negative"),
    (sla_params("lots"), "'quota' must be a whole number"),
    (sla_params("2.5"), "'quota' must be a whole number"),
    (sla_params("10", "abc"), "'notifyPercent'"),
    (sla_params("10", "0"), "'notifyPercent'"),
    (sla_params("10", "150"), "'notifyPercent'"),
    (sla_params("10", interval="1.5"), "'alertInterval'"),
])
async def test_bad_monitor_sla_quota_is_rejected(sqlite_node: Node, params: list[dict[str, Any]],
                                                 fragment: str) -> None:
    """A quota the gateway could not enforce (it would drop it silently) is refused, on create and update."""
    body = {"policyAction": {"names": [{"value": "q", "locale": "en"}], "templateKey": "monitorSLA",
                             "parameters": params}}
    r = await sqlite_node.admin.post("/policyActions", json=body)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text
    good = await sqlite_node.admin.post("/policyActions", json={"policyAction": {
        **body["policyAction"], "parameters": sla_params("150")}})
    assert good.status_code == 201, good.text
    action_id = good.json()["policyAction"]["id"]
    r = await sqlite_node.admin.put(f"/policyActions/{action_id}", json=body)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text
    stored = (await sqlite_node.admin.get(f"/policyActions/{action_id}")).json()["policyAction"]
    assert stored["parameters"][0]["parameters"][2]["extendedProperties"][0]["value"] == "150"


async def make_package(node: Node, api_ids: list[str], plan_ids: list[str], activate: bool = True) -> dict[str, Any]:
    r = await node.admin.post("/packages", json={"name": "Gold", "apiIds": api_ids, "planIds": plan_ids})
    assert r.status_code == 201, r.text
    package: dict[str, Any] = r.json()["packageResponse"]["package"]
    if activate:
        r = await node.admin.put(f"/packages/{package['id']}/activate")
        assert r.status_code == 200, r.text
    return package


async def subscribe(node: Node, package_id: str, plan_id: str, name: str = "sub") -> dict[str, Any]:
    r = await node.admin.post("/subscriptions", json={"applicationName": name, "packageId": package_id,
                                                      "planId": plan_id, "requesterId": "Administrator"})
    assert r.status_code == 201, r.text
    await node.reload()
    body: dict[str, Any] = r.json()
    return body


async def calls(node: Node, key: str, n: int, path: str = "/Echo/1.0/echo") -> list[int]:
    return [(await node.gw.get(path, headers={KEY: key})).status_code for _ in range(n)]


async def setup_package(node: Node, upstream: Upstream, **limits: Any) -> tuple[dict[str, Any], ...]:
    api = await node.create_api(spec_for(upstream.url))
    other = await node.create_api(spec_for(upstream.url, "Other", "1.0"))
    plan = await make_plan(node, "Gold", **limits)
    package = await make_package(node, [api["id"], other["id"]], [plan["id"]])
    sub = await subscribe(node, package["id"], plan["id"])
    return api, other, plan, package, sub


async def test_plan_quota_applies_across_the_package_and_usage_reports_it(node: Node, upstream: Upstream) -> None:
    _, _, plan, package, sub = await setup_package(node, upstream, rate=100, quota=4)
    key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    assert await calls(node, key, 2) + await calls(node, key, 3, "/Other/1.0/echo") == [200, 200, 200, 200, 429]
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 403  # no key: package APIs need one
    assert (await node.gw.get("/Echo/1.0/echo", headers={KEY: "nope"})).status_code == 403
    await asyncio.sleep(0.1)  # success/failure tallies are written after the response
    usage = (await node.admin.get(f"/subscriptions/{sub['id']}/usage")).json()
    assert usage["quotaAllowed"] == 4 and usage["usedQuota"] == 4
    assert usage["successCount"] == 4 and usage["failureCount"] == 1
    assert usage["interval"] == "1" and usage["intervalUnit"] == "days"
    assert usage["endTime"] - usage["startTime"] == 86_400_000 and 0 < usage["remainingPeriodInMillis"] <= 86_400_000
    assert usage["packageId"] == package["id"] and usage["planId"] == plan["id"]
    listed = (await node.admin.get("/subscriptions/usage", params={"package": "Gold"})).json()
    assert [u["applicationId"] for u in listed] == [sub["id"]]
    assert (await node.admin.get("/subscriptions/usage", params={"package": "Silver"})).json() == []


async def test_rate_limit_exact_under_200_concurrent_clients(sqlite_node: Node, upstream: Upstream) -> None:
    _, _, _, _, sub = await setup_package(sqlite_node, upstream, rate=25)
    key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    statuses = await burst(sqlite_node, "/Echo/1.0/echo", 200, {KEY: key})
    assert statuses.count(200) == 25 and statuses.count(429) == 175


async def test_switching_plan_resets_the_quota(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    _api, _other, plan, package, sub = await setup_package(node, upstream, quota=2)
    key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    assert await calls(node, key, 3) == [200, 200, 429]
    silver = await make_plan(node, "Silver", quota=3)
    r = await node.admin.put(f"/packages/{package['id']}", json={"planIds": [plan["id"], silver["id"]]})
    assert r.status_code == 200, r.text
    r = await node.admin.put(f"/subscriptions/{sub['id']}", json={"newPackageId": package["id"],
                                                                  "newPlanId": silver["id"]})
    assert r.status_code == 200 and r.json()["planId"] == silver["id"], r.text
    await node.reload()
    assert await calls(node, key, 4) == [200, 200, 200, 429]
    usage = (await node.admin.get(f"/subscriptions/{sub['id']}/usage")).json()
    assert usage["usedQuota"] == 3 and usage["quotaAllowed"] == 3


async def test_monitor_sla_quota_notifies_without_blocking(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    *_, sub = await setup_package(node, upstream, sla_quota=(4, 50))
    key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    assert await calls(node, key, 6) == [200] * 6
    await asyncio.sleep(0.5)
    from sqlalchemy import select

    from portico.store.tables import gateway_events

    async with node.portico.store.read() as tx:
        rows = (await tx.connection.execute(select(gateway_events).where(
            gateway_events.c.application_id == sub["id"]))).all()
    assert [r._mapping["event_type"] for r in rows] == ["MonitorEvent"]  # once, at 50 % (2 of 4)
    assert (await node.admin.get(f"/subscriptions/{sub['id']}/usage")).json()["usedQuota"] == 6


async def test_deactivation_and_deletion_stop_enforcement(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    _api, _, _plan, package, sub = await setup_package(node, upstream, quota=1)
    key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    assert await calls(node, key, 2) == [200, 429]
    assert (await node.admin.put(f"/packages/{package['id']}/deactivate")).status_code == 200
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200  # back to the API's own policies
    assert (await node.admin.put(f"/packages/{package['id']}/activate")).status_code == 200
    assert (await node.admin.delete(f"/subscriptions/{sub['id']}")).status_code == 204
    await node.reload()
    assert await calls(node, key, 1) == [403]
    assert (await node.admin.get(f"/applications/{sub['id']}")).status_code == 404


async def test_quota_survives_a_restart(db_url: str, tmp_path: Path, upstream: Upstream) -> None:
    async with running_node(db_url, tmp_path / "data") as node:
        *_, sub = await setup_package(node, upstream, quota=3)
        key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
        assert await calls(node, key, 2) == [200, 200]
    async with running_node(db_url, tmp_path / "data") as node:
        assert await calls(node, key, 2) == [200, 429]
        assert (await node.admin.get(f"/subscriptions/{sub['id']}/usage")).json()["usedQuota"] == 3


async def test_quota_is_saved_periodically(sqlite_url: str, tmp_path: Path, upstream: Upstream) -> None:
    from sqlalchemy import select

    from portico.store.tables import quota_counters

    async with running_node(sqlite_url, tmp_path / "data") as node:
        r = await node.admin.put("/configurations/settings", json={"preferredSettings": {
            "extendedKeys": {"pgmen.quotaSurvival.interval": "0.2"}}})
        assert r.status_code == 200, r.text
        *_, sub = await setup_package(node, upstream, quota=5)
        # The interval is read when the saver starts (first snapshot): restart to apply it.
    async with running_node(sqlite_url, tmp_path / "data") as node:
        await calls(node, sub["accessTokens"]["apiAccessKey"]["apiAccessKey"], 2)
        await asyncio.sleep(0.6)
        async with node.portico.store.read() as tx:
            rows = (await tx.connection.execute(select(quota_counters))).all()
        assert any(r._mapping["key"].startswith(f"q:{sub['id']}:") and r._mapping["count"] == 2 for r in rows)


def test_two_processes_share_one_limit_through_redis(sqlite_url: str, tmp_path: Path, upstream: Upstream) -> None:
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    ports = [free_port(), free_port()]
    prefix = f"portico-test:{uuid.uuid4().hex}:"  # one prefix: one cluster's counters (--redis-prefix)
    procs = [spawn(["serve", "--port", str(p), "--data-dir", str(tmp_path / f"d{i}"), "--db", db, "--redis",
                    REDIS_URL, "--redis-prefix", prefix], {"PORTICO_ADMIN_PASSWORD": "test-secret"})
             for i, p in enumerate(ports)]
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_healthy(port, proc)
        admin = httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}/rest/apigateway",
                             auth=("Administrator", "test-secret"), timeout=30)
        api = admin.post("/apis", json={"type": "openapi", "apiDefinition": spec_for(upstream.url, f"E{ports[0]}",
                                                                                        "1.0")}).json()
        api_id = api["apiResponse"]["api"]["id"]
        assert admin.put(f"/apis/{api_id}/activate").status_code == 200
        plan = admin.post("/plans", json={"name": "P"}).json()["planResponse"]
        action = admin.post("/policyActions", json={"policyAction": {"templateKey": "throttle", "names": [],
                                                                     "parameters": throttle(30)}}).json()
        admin.put(f"/policies/{plan['policies'][0]}", json={"policy": {"policyEnforcements": [
            {"stageKey": "throttle", "enforcements": [{"enforcementObjectId": action["policyAction"]["id"]}]}]}})
        package = admin.post("/packages", json={"name": "K", "apiIds": [api_id], "planIds": [plan["id"]]}).json()
        package_id = package["packageResponse"]["id"]
        assert admin.put(f"/packages/{package_id}/activate").status_code == 200
        sub = admin.post("/subscriptions", json={"applicationName": "s", "packageId": package_id,
                                                 "planId": plan["id"]}).json()
        key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
        asyncio.run(asyncio.sleep(1.5))  # both nodes poll the store and reload
        path = f"/gateway/E{ports[0]}/1.0/echo"

        async def fire() -> list[int]:
            async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as c:
                rs = await asyncio.gather(*(c.get(f"http://127.0.0.1:{ports[i % 2]}{path}", headers={KEY: key})
                                            for i in range(100)))
            return [r.status_code for r in rs]

        statuses = asyncio.run(fire())
        assert statuses.count(200) == 30 and statuses.count(429) == 70

        async def counted_keys() -> list[bytes]:
            redis = aioredis.Redis.from_url(REDIS_URL)
            try:
                keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
                if keys:
                    await redis.delete(*keys)
                return keys
            finally:
                await redis.aclose()

        assert any(sub["id"].encode() in k for k in asyncio.run(counted_keys()))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)


# -- bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "'name'"),
    ({"name": ""}, "'name'"),
    ({"name": 5}, "'name'"),
    ({"name": "p", "apiIds": "x"}, "'apiIds'"),
    ({"name": "p", "apiIds": ["missing"]}, "missing"),
    ({"name": "p", "planIds": ["missing"]}, "missing"),
    ({"name": "p", "customFields": []}, "'customFields'"),
])
async def test_bad_package_input(sqlite_node: Node, body: dict[str, Any], fragment: str) -> None:
    r = await sqlite_node.admin.post("/packages", json=body)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text
    assert (await sqlite_node.admin.get("/packages")).json()["packageResponse"] == []


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "'name'"),
    ({"name": "p", "cost": "cheap"}, "'cost'"),
    ({"name": "p", "cost": {"value": 5}}, "'cost'"),
    ({"name": "p", "License": 3}, "'License'"),
    ({"name": "p", "deprecated": "yes"}, "'deprecated'"),
])
async def test_bad_plan_input(sqlite_node: Node, body: dict[str, Any], fragment: str) -> None:
    r = await sqlite_node.admin.post("/plans", json=body)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text
    assert (await sqlite_node.admin.get("/plans")).json()["planResponse"] == []


async def test_package_and_plan_rules(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    plan = await make_plan(node, "Gold", quota=3)
    empty = await make_package(node, [], [], activate=False)
    assert (await node.admin.put(f"/packages/{empty['id']}/activate")).status_code == 400
    package = await make_package(node, [api["id"]], [plan["id"]])
    assert (await node.admin.put(f"/packages/{package['id']}/activate")).status_code == 400  # already active
    assert (await node.admin.put(f"/packages/{package['id']}", json={"active": False})).status_code == 400
    assert (await node.admin.delete(f"/plans/{plan['id']}")).status_code == 400  # in a package
    sub = await subscribe(node, package["id"], plan["id"])
    r = await node.admin.put(f"/packages/{package['id']}", json={"planIds": []})
    assert r.status_code == 400 and "subscribers" in r.json()["errorDetails"]
    assert (await node.admin.delete(f"/packages/{package['id']}")).status_code == 400
    for path in ("/packages/nope", "/packages/nope/apis", "/packages/nope/plans", "/plans/nope",
                 "/subscriptions/nope", "/subscriptions/nope/usage"):
        assert (await node.admin.get(path)).status_code == 404, path
    assert (await node.admin.put("/packages/nope/activate")).status_code == 404
    assert (await node.admin.delete("/plans/nope")).status_code == 404
    apis = (await node.admin.get(f"/packages/{package['id']}/apis")).json()["apiResponse"]
    assert [a["id"] for a in apis] == [api["id"]]
    plans = (await node.admin.get(f"/packages/{package['id']}/plans")).json()["planResponse"]
    assert plans[0]["id"] == plan["id"] and plans[0]["packageIds"] == [package["id"]]
    assert plans[0]["License"] == "Apache-2.0" and plans[0]["cost"]["value"] == "100USD"
    listed = (await node.admin.get("/subscriptions", params={"packageId": package["id"]})).json()
    assert listed[0]["accessTokens"]["apiAccessKey"]["apiAccessKey"] == "*" * 32
    full = (await node.admin.get(f"/subscriptions/{sub['id']}")).json()
    assert full["accessTokens"]["apiAccessKey"]["apiAccessKey"] == sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"packageId": "P", "planId": "L"}, 400, "'applicationName'"),
    ({"applicationName": "a", "planId": "L"}, 400, "'packageId'"),
    ({"applicationName": "a", "packageId": "P"}, 400, "'planId'"),
    ({"applicationName": "a", "packageId": "nope", "planId": "L"}, 400, "unknown package"),
    ({"applicationName": "a", "packageId": "P", "planId": "nope"}, 400, "not a plan of"),
    ({"applicationName": "a", "packageId": "I", "planId": "L"}, 400, "not active"),
    ({"applicationId": "nope", "packageId": "P", "planId": "L"}, 404, "nope"),
    ({"applicationName": 5, "packageId": "P", "planId": "L"}, 400, "'applicationName'"),
])
async def test_bad_subscription_input(sqlite_node: Node, upstream: Upstream, body: dict[str, Any], status: int,
                                      fragment: str) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    plan = await make_plan(node, "Gold")
    active = await make_package(node, [api["id"]], [plan["id"]])
    inactive = await make_package(node, [api["id"]], [plan["id"]], activate=False)
    ids = {"P": active["id"], "I": inactive["id"], "L": plan["id"]}
    resolved = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    r = await node.admin.post("/subscriptions", json=resolved)
    assert r.status_code == status and fragment in r.json()["errorDetails"], r.text
    assert (await node.admin.get("/subscriptions")).json() == []


async def test_bad_switch_and_delete(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    *_, plan, package, sub = await setup_package(node, upstream, quota=3)
    plain = await node.admin.post("/applications", json={"name": "plain"})
    for body, fragment in (({}, "'newPackageId'"), ({"newPackageId": package["id"]}, "'newPlanId'"),
                           ({"newPackageId": "x", "newPlanId": plan["id"]}, "unknown package")):
        r = await node.admin.put(f"/subscriptions/{sub['id']}", json=body)
        assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text
    r = await node.admin.put(f"/subscriptions/{plain.json()['id']}",
                             json={"newPackageId": package["id"], "newPlanId": plan["id"]})
    assert r.status_code == 400 and "not a subscription" in r.json()["errorDetails"]
    assert (await node.admin.delete(f"/subscriptions/{plain.json()['id']}")).status_code == 400
    assert (await node.admin.delete("/subscriptions/nope")).status_code == 404
    assert (await node.admin.get(f"/subscriptions/{sub['id']}")).json()["planId"] == plan["id"]


async def test_plan_policies_take_only_limit_actions(sqlite_node: Node) -> None:
    node = sqlite_node
    plan = await make_plan(node, "Gold")
    r = await node.admin.post("/policyActions", json={"policyAction": {"templateKey": "evaluatePolicy", "names": [],
        "parameters": [{"templateKey": "IdentificationRule", "parameters": [
            {"templateKey": "identificationType", "values": ["apiKey"]}]}]}})
    assert r.status_code == 201, r.text
    r = await node.admin.put(f"/policies/{plan['policies'][0]}", json={"policy": {"policyEnforcements": [
        {"stageKey": "throttle", "enforcements": [{"enforcementObjectId": r.json()["policyAction"]["id"]}]}]}})
    assert r.status_code == 400 and "throttle or monitorSLA" in r.json()["errorDetails"]


async def test_activation_keeps_an_and_identification_policy(sqlite_node: Node, upstream: Upstream) -> None:
    from tests.gateway.test_runtime import add_action, rules

    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    # The API demands a key AND a caller from 10.9.0.0/16; tests call from 127.0.0.1.
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey", "ipAddressRange", connector="AND",
                                                              lookup="global"))
    plan = await make_plan(node, "Gold", rate=100)
    package = await make_package(node, [api["id"]], [plan["id"]])
    sub = await subscribe(node, package["id"], plan["id"])
    key = sub["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    assert await calls(node, key, 1) == [403]  # the IP rule still applies to subscribers
    r = await node.admin.put(f"/applications/{sub['id']}", json={"identifiers": [
        {"key": "ipAddressRange", "value": ["127.0.0.0/8"]}]})
    assert r.status_code == 200, r.text
    await node.reload()
    assert await calls(node, key, 1) == [200]
    assert package["id"]


async def test_deleting_a_subscribed_application_drops_its_subscription(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    _, _, _, _, sub = await setup_package(node, upstream, rate=10)
    assert (await node.admin.delete(f"/applications/{sub['id']}")).status_code == 204
    listed = await node.admin.get("/subscriptions")
    assert listed.status_code == 200, listed.text
    assert (await node.admin.get("/subscriptions/usage")).status_code == 200
