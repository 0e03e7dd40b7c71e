"""Discovery and ingestion end to end: moto in server mode, a real node, the agent in-process."""

from __future__ import annotations

from typing import Any

from portico.federation.ingest import package_id_for
from tests.federation.support import (
    agent_env,
    connected,
    create_integration,
    create_token,
    eventually,
    fast_links,
    ingest,
    running_agent,
    status_of,
)
from tests.support.aws import apigw, aws_proxy, make_api, make_usage_plan
from tests.support.node import Node


async def _linked(node: Node, aws: str, regions: str = "eu-west-1", accept: bool = False) -> tuple[str, Any]:
    fast_links(node)
    iid = await create_integration(node)
    env = agent_env(node, iid, await create_token(node), aws, regions=regions, accept_without_plan=accept)
    return iid, running_agent(env)


async def _discover(node: Node, iid: str) -> dict[str, Any]:
    r = await node.admin.post(f"/integrations/{iid}/discover")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


async def test_discovery_with_and_without_usage_plans(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    c = apigw(fresh)
    orders = make_api(c, "Orders", ("prod", "test"))
    make_api(c, "Loose")
    make_usage_plan(c, "Gold", [(orders, "prod")])

    iid, agent = await _linked(node, fresh)
    async with agent:
        await eventually(lambda: connected(node, iid))
        found = await _discover(node, iid)
        assert [(a["name"], a["version"], a["state"]) for a in found["apis"]] == [("Orders", "prod", "NEW")]
        assert found["total"] == 1 and found["new"] == 1 and not found["isPartialDiscovery"]
        assert "pages" not in found["apis"][0]  # the preview carries no definitions
        await ingest(node, iid)
        again = await _discover(node, iid)
        assert [a["state"] for a in again["apis"]] == ["UPDATE"]
        status = await status_of(node, iid)
        assert status["lastDiscovery"]["update"] == 1 and status["lastIngest"]["created"] == 1

    all_iid, all_agent = await _linked(node, fresh, accept=True)
    async with all_agent:
        await eventually(lambda: connected(node, all_iid))
        found = await _discover(node, all_iid)
        assert sorted((a["name"], a["version"]) for a in found["apis"]) == [
            ("Loose", "prod"), ("Orders", "prod"), ("Orders", "test")]


async def test_ingestion_from_two_regions_and_the_gateway_points_elsewhere(node: Node, fresh: str) -> None:
    eu, us = apigw(fresh, "eu-west-1"), apigw(fresh, "us-east-1")
    orders = make_api(eu, "Orders", description="orders in the EU")
    make_usage_plan(eu, "Gold", [(orders, "prod")], rate=5, burst=7, quota=100, period="DAY")
    stock = make_api(us, "Stock")
    make_usage_plan(us, "Basic", [(stock, "prod")], quota=None)

    iid, agent = await _linked(node, fresh, regions="eu-west-1,us-east-1")
    async with agent:
        await eventually(lambda: connected(node, iid))
        job = await ingest(node, iid)
    assert job["total"] == 2 and job["created"] == 2 and job["errors"] == []

    package = (await node.admin.get(f"/packages/{package_id_for(iid)}")).json()["packageResponse"]
    assert package["active"] and len(package["apiIds"]) == 2 and len(package["planIds"]) == 2
    apis = {}
    for api_id in package["apiIds"]:
        api = (await node.admin.get(f"/apis/{api_id}")).json()["apiResponse"]["api"]
        apis[api["apiName"]] = api
    orders_api = apis["Orders"]
    assert orders_api["apiVersion"] == "prod" and orders_api["apiDescription"] == "orders in the EU"
    assert not orders_api["isActive"] and "/items" in orders_api["apiDefinition"]["paths"]
    fed = orders_api["federation"]
    assert fed["integrationId"] == iid and fed["provider"] == "aws-api-gateway"
    assert fed["uniqueId"].endswith(f":eu-west-1:{orders}:prod") and not fed["removedFromProvider"]
    assert fed["connectionDetails"]["invokeUrl"] == f"https://{orders}.execute-api.eu-west-1.amazonaws.com/prod"
    assert apis["Stock"]["federation"]["connectionDetails"]["region"] == "us-east-1"

    plans = {}
    for plan_id in package["planIds"]:
        plan = (await node.admin.get(f"/plans/{plan_id}")).json()["planResponse"]
        plans[plan["name"]] = plan
    gold = plans["Gold"]["federation"]
    assert gold["limits"] == {"rateLimit": 5.0, "burstLimit": 7, "quotaLimit": 100, "quotaPeriod": "DAY",
                              "quotaOffset": 0}
    assert gold["enforcedBy"] == "provider" and gold["apiIds"] == [orders_api["id"]]
    assert plans["Gold"]["policies"] == [] and "enforced by the provider" in plans["Gold"]["description"]
    assert "quotaLimit" not in plans["Basic"]["federation"]["limits"]

    r = await node.gw.get("/Orders/prod/items")
    assert r.status_code == 404
    assert f"https://{orders}.execute-api.eu-west-1.amazonaws.com/prod" in r.text and "federated" in r.text


async def test_reingestion_after_changes_in_aws(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    c = apigw(fresh)
    a, b, gone = make_api(c, "Alpha"), make_api(c, "Beta"), make_api(c, "Gamma")
    make_usage_plan(c, "Gold", [(a, "prod"), (b, "prod"), (gone, "prod")])
    silver = make_usage_plan(c, "Silver", [(b, "prod")])

    iid, agent = await _linked(node, fresh)
    async with agent:
        await eventually(lambda: connected(node, iid))
        first = await ingest(node, iid)
        assert first["created"] == 3
        package = (await node.admin.get(f"/packages/{package_id_for(iid)}")).json()["packageResponse"]
        plans = {(await node.admin.get(f"/plans/{p}")).json()["planResponse"]["name"]: p for p in package["planIds"]}
        r = await node.admin.post("/subscriptions", json={"packageId": package["id"], "planId": plans["Silver"],
                                                          "applicationName": "shop"})
        assert r.status_code == 201, r.text
        app_id = r.json()["id"]
        assert len(c.get_api_keys()["items"]) == 1

        c.delete_usage_plan(usagePlanId=silver)
        c.delete_rest_api(restApiId=gone)
        c.update_rest_api(restApiId=a, patchOperations=[{"op": "replace", "path": "/name", "value": "Alpha2"}])
        second = await ingest(node, iid)

    assert second["created"] == 0 and second["updated"] == 2
    assert second["plansRemoved"] == [plans["Silver"]] and len(second["removedFromProvider"]) == 1
    apis = {x["api"]["apiName"]: x["api"] for x in (await node.admin.get("/apis")).json()["apiResponse"]}
    assert "Alpha" not in apis and apis["Alpha2"]["federation"]["uniqueId"].endswith(f":{a}:prod")
    assert apis["Gamma"]["federation"]["removedFromProvider"] is True
    assert not apis["Beta"]["federation"]["removedFromProvider"]
    assert (await node.admin.get(f"/plans/{plans['Silver']}")).status_code == 404
    gold = (await node.admin.get(f"/plans/{plans['Gold']}")).json()["planResponse"]["federation"]
    assert sorted(gold["apiIds"]) == sorted([apis["Alpha2"]["id"], apis["Beta"]["id"]])
    # the subscription to the vanished plan was closed: its key deleted in AWS, its application gone
    assert c.get_api_keys()["items"] == []
    assert (await node.admin.get(f"/subscriptions/{app_id}")).status_code == 404
    r = await node.gw.get("/Gamma/prod/items")
    assert r.status_code == 404 and "removed from its provider" in r.text
    # the old name is free again
    r = await node.admin.post("/apis", json={"type": "openapi", "apiDefinition": {
        "openapi": "3.0.0", "info": {"title": "Alpha", "version": "prod"}, "paths": {}}})
    assert r.status_code == 200, r.text


async def test_selective_ingestion_and_paged_discovery(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    c = apigw(fresh)
    ids = [make_api(c, f"api{i}") for i in range(5)]
    make_usage_plan(c, "All", [(i, "prod") for i in ids])
    with aws_proxy(fresh, page_size=2) as proxied:
        iid, agent = await _linked(node, proxied)
        async with agent:
            await eventually(lambda: connected(node, iid))
            found = await _discover(node, iid)
            assert sorted(a["name"] for a in found["apis"]) == [f"api{i}" for i in range(5)]
            chosen = [a["uniqueId"] for a in found["apis"] if a["name"] in ("api1", "api3")]
            job = await ingest(node, iid, chosen)
            assert job["total"] == 2 and job["created"] == 2 and job["removedFromProvider"] == []
            names = sorted(x["api"]["apiName"] for x in (await node.admin.get("/apis")).json()["apiResponse"])
            assert names == ["api1", "api3"]
            job = await ingest(node, iid)
            assert job["total"] == 5 and job["created"] == 3 and job["updated"] == 2
            # without waiting: 202 with the running job, then its own URL
            r = await node.admin.post(f"/integrations/{iid}/ingest", params={"wait": "0"})
            assert r.status_code == 202 and r.json()["status"] == "RUNNING", r.text
            url = f"/integrations/{iid}/ingestJobs/{r.json()['id']}"

            async def finished() -> Any:
                polled = (await node.admin.get(url)).json()
                return polled if polled["status"] != "RUNNING" else None

            polled = await eventually(finished, what="job done")
            assert polled["status"] == "SUCCEEDED" and polled["updated"] == 5
