"""Discovery and ingestion end to end: moto in server mode, a real node, the agent in-process."""

from __future__ import annotations

import asyncio
from typing import Any

from portico.federation.ingest import package_id_for
from tests.federation.support import (
    Switch,
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


async def _plans_by_name(node: Node, iid: str) -> dict[str, str]:
    package = (await node.admin.get(f"/packages/{package_id_for(iid)}")).json()["packageResponse"]
    return {(await node.admin.get(f"/plans/{p}")).json()["planResponse"]["name"]: p for p in package["planIds"]}


async def _apis(node: Node) -> dict[str, dict[str, Any]]:
    return {x["api"]["apiName"]: x["api"] for x in (await node.admin.get("/apis")).json()["apiResponse"]}


async def test_full_ingestion_during_an_aws_outage_removes_nothing(sqlite_node: Node, fresh: str) -> None:
    """AWS unreachable: the discovery fails, so the ingestion is refused with the provider's error
    (not an empty 'complete' ingestion that would remove every API, plan and subscription)."""
    node = sqlite_node
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    switch = Switch(fresh)
    iid, agent = await _linked(node, await switch.on())
    fast_links(node, reply_timeout=20.0)  # botocore's retries against a closed port can take over 5 s
    async with agent:
        await eventually(lambda: connected(node, iid))
        await ingest(node, iid)
        plans = await _plans_by_name(node, iid)
        r = await node.admin.post("/subscriptions", json={"packageId": package_id_for(iid), "planId": plans["Gold"],
                                                          "applicationName": "customer-app"})
        assert r.status_code == 201, r.text
        app_id = r.json()["id"]
        await switch.off()
        r = await node.admin.post(f"/integrations/{iid}/ingest")
        assert r.status_code == 502, r.text
        assert "discovery failed" in r.json()["errorDetails"]
        # the provider's error, from the failed ingestion or from the health check after it
        assert "Could not connect" in (await status_of(node, iid))["lastProviderError"]["message"]
    assert (await node.admin.get(f"/subscriptions/{app_id}")).status_code == 200
    assert (await node.admin.get(f"/applications/{app_id}")).status_code == 200
    assert (await node.admin.get(f"/plans/{plans['Gold']}")).status_code == 200
    assert (await _apis(node))["Orders"]["federation"]["removedFromProvider"] is False
    assert len(c.get_api_keys()["items"]) == 1


async def test_partial_discovery_updates_what_it_found_and_removes_nothing(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    eu, us = apigw(fresh, "eu-west-1"), apigw(fresh, "us-east-1")
    orders = make_api(eu, "Orders")
    make_usage_plan(eu, "Gold", [(orders, "prod")])
    stock = make_api(us, "Stock")
    basic = make_usage_plan(us, "Basic", [(stock, "prod")])
    deny: list[tuple[str, str]] = []
    with aws_proxy(fresh, deny=deny) as proxied:
        iid, agent = await _linked(node, proxied, regions="eu-west-1,us-east-1")
        async with agent:
            await eventually(lambda: connected(node, iid))
            await ingest(node, iid)
            plans = await _plans_by_name(node, iid)
            # an application of the subscriber's own, subscribed to the US plan
            r = await node.admin.post("/applications", json={"name": "own-app"})
            assert r.status_code == 200, r.text
            own_app = r.json()["id"]
            r = await node.admin.post("/subscriptions", json={"packageId": package_id_for(iid),
                                                              "planId": plans["Basic"], "applicationId": own_app})
            assert r.status_code == 201, r.text

            deny.append(("GET", rf"^/restapis/{stock}/stages$"))  # the US region cannot be listed
            eu.update_rest_api(restApiId=orders, patchOperations=[{"op": "replace", "path": "/description",
                                                                   "value": "changed"}])
            r = await node.admin.post(f"/integrations/{iid}/ingest")
            assert r.status_code == 200, r.text
            job = r.json()
            assert job["status"] == "PARTIAL" and job["isPartialDiscovery"] and not job["complete"], job
            assert job["updated"] == 1 and job["removedFromProvider"] == [] and job["plansRemoved"] == []
            assert any("us-east-1" in e and "AccessDenied" in e for e in job["errors"]), job["errors"]
            assert "us-east-1" in (await status_of(node, iid))["lastProviderError"]["message"]
            apis = await _apis(node)
            assert apis["Orders"]["apiDescription"] == "changed"
            assert apis["Stock"]["federation"]["removedFromProvider"] is False
            assert (await node.admin.get(f"/subscriptions/{own_app}")).status_code == 200
            assert len(us.get_api_keys()["items"]) == 1

            # the usage plan really goes: a complete ingestion closes the subscription, deletes its key,
            # and leaves the application the subscriber brought (only without its subscription)
            deny.clear()
            us.delete_usage_plan(usagePlanId=basic)
            job = await ingest(node, iid)
            assert job["complete"] and job["plansRemoved"] == [plans["Basic"]]
            assert job["removedFromProvider"] == [apis["Stock"]["id"]]  # no plan left: not listed any more
    r = await node.admin.get(f"/subscriptions/{own_app}")
    assert r.status_code == 400 and "is not a subscription" in r.json()["errorDetails"]
    r = await node.admin.get(f"/applications/{own_app}")
    assert r.status_code == 200, r.text
    assert r.json()["applications"][0]["subscription"] is False
    assert us.get_api_keys()["items"] == []


async def test_export_failures_leave_the_api_listed_and_in_place(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    c = apigw(fresh)
    alpha, beta = make_api(c, "Alpha"), make_api(c, "Beta")
    make_usage_plan(c, "Gold", [(alpha, "prod"), (beta, "prod")])
    deny: list[tuple[str, str]] = []
    with aws_proxy(fresh, deny=deny) as proxied:
        iid, agent = await _linked(node, proxied)
        async with agent:
            await eventually(lambda: connected(node, iid))
            await ingest(node, iid)
            deny.append(("GET", rf"^/restapis/{beta}/stages/prod/exports/"))
            # the preview needs no definition: DISCOVER makes no GetExport
            found = await _discover(node, iid)
            assert sorted(a["name"] for a in found["apis"]) == ["Alpha", "Beta"] and not found["errors"]
            r = await node.admin.post(f"/integrations/{iid}/ingest")
            job = r.json()
    assert job["status"] == "SUCCEEDED" and job["complete"] and job["updated"] == 1, job
    assert job["removedFromProvider"] == [] and any("could not be exported" in e for e in job["errors"])
    assert (await _apis(node))["Beta"]["federation"]["removedFromProvider"] is False


async def test_ingestion_answers_before_exporting_and_streams_batches(sqlite_node: Node, fresh: str) -> None:
    """GetExport is slow (0.3 s each); 12 APIs would take 3.6 s, beyond the 2 s reply timeout, if
    START_INGEST exported everything before answering. It answers after the listing; the exports
    follow one INGEST batch at a time."""
    node = sqlite_node
    c = apigw(fresh)
    ids = [make_api(c, f"api{i:02d}") for i in range(12)]
    make_usage_plan(c, "All", [(i, "prod") for i in ids])
    with aws_proxy(fresh, slow=(("GET", r"^/restapis/[^/]+/stages/[^/]+/exports/", 0.3),)) as proxied:
        iid, agent = await _linked(node, proxied)
        fast_links(node, reply_timeout=2.0)
        async with agent:
            await eventually(lambda: connected(node, iid))
            r = await node.admin.post(f"/integrations/{iid}/ingest", params={"wait": "0"})
            assert r.status_code == 202, r.text
            url = f"/integrations/{iid}/ingestJobs/{r.json()['id']}"
            seen: set[int] = set()

            async def finished() -> Any:
                polled = (await node.admin.get(url)).json()
                seen.add(polled["received"])
                return polled if polled["status"] != "RUNNING" else None

            job = await eventually(finished, timeout=30, what="job done")
            await asyncio.sleep(0)
    assert job["status"] == "SUCCEEDED" and job["total"] == 12 and job["created"] == 12, job
    assert 10 in seen  # the first batch was written while the second was still being exported
