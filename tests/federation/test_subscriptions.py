"""Subscriptions to federated plans: keys created and deleted in AWS (moto) through the agent."""

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
)
from tests.support.aws import apigw, aws_proxy, make_api, make_usage_plan
from tests.support.node import Node


async def _plans(node: Node, iid: str) -> tuple[str, dict[str, str]]:
    package = (await node.admin.get(f"/packages/{package_id_for(iid)}")).json()["packageResponse"]
    names = {}
    for plan_id in package["planIds"]:
        names[(await node.admin.get(f"/plans/{plan_id}")).json()["planResponse"]["name"]] = plan_id
    return package["id"], names


def _keys(client: Any) -> list[dict[str, Any]]:
    return list(client.get_api_keys(includeValues=True)["items"])


async def test_subscribe_switch_and_unsubscribe(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    api = make_api(c, "Orders")
    gold = make_usage_plan(c, "Gold", [(api, "prod")])
    silver = make_usage_plan(c, "Silver", [(api, "prod")])
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid))
        await ingest(node, iid)
        package_id, plans = await _plans(node, iid)

        r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                          "applicationName": "shop"})
        assert r.status_code == 201, r.text
        sub = r.json()
        app_id = sub["id"]
        access = sub["federatedAccess"]
        (key,) = _keys(c)
        assert access["apiKey"] == key["value"] and key["enabled"]
        assert access["integrationId"] == iid and access["usagePlanId"] == gold
        assert access["apis"][0]["invokeUrl"].startswith(f"https://{api}.execute-api.")
        assert [k["id"] for k in c.get_usage_plan_keys(usagePlanId=gold)["items"]] == [key["id"]]
        assert key["tags"]["portico-application"] == app_id

        got = (await node.admin.get(f"/subscriptions/{app_id}")).json()
        assert got["federatedAccess"]["apiKey"] == key["value"]
        listed = (await node.admin.get("/subscriptions")).json()
        assert listed[0]["federatedAccess"]["apiKey"] == "*" * 32

        # switching to the other usage plan: a new key there, the old one deleted
        r = await node.admin.put(f"/subscriptions/{app_id}", json={"newPackageId": package_id,
                                                                   "newPlanId": plans["Silver"]})
        assert r.status_code == 200, r.text
        (new_key,) = _keys(c)
        assert new_key["id"] != key["id"] and r.json()["federatedAccess"]["apiKey"] == new_key["value"]
        assert [k["id"] for k in c.get_usage_plan_keys(usagePlanId=silver)["items"]] == [new_key["id"]]

        # a key deleted in AWS behind our back counts as revoked
        c.delete_api_key(apiKey=new_key["id"])
        r = await node.admin.delete(f"/subscriptions/{app_id}")
        assert r.status_code == 204, r.text
        assert (await node.admin.get(f"/subscriptions/{app_id}")).status_code == 404

        r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                          "applicationName": "shop2"})
        assert r.status_code == 201
        r = await node.admin.delete(f"/subscriptions/{r.json()['id']}")
        assert r.status_code == 204 and _keys(c) == []


async def test_failed_attach_rejects_the_subscription_with_the_providers_message(sqlite_node: Node,
                                                                                 fresh: str) -> None:
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    with aws_proxy(fresh, fail_attach=True) as proxied:
        async with running_agent(agent_env(node, iid, await create_token(node), proxied)):
            await eventually(lambda: connected(node, iid))
            await ingest(node, iid)
            package_id, plans = await _plans(node, iid)
            r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                              "applicationName": "shop"})
    assert r.status_code == 400, r.text
    assert "NotFoundException: Invalid Usage Plan ID specified" in r.json()["errorDetails"]
    assert _keys(c) == []  # the new key was deleted again
    assert (await node.admin.get("/subscriptions")).json() == []
    apps = (await node.admin.get("/applications")).json()["applications"]
    assert [a for a in apps if a["name"] == "shop"] == []


async def test_without_agent_subscribing_is_refused_and_deleting_the_integration(sqlite_node: Node,
                                                                                fresh: str) -> None:
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid))
        await ingest(node, iid)
        package_id, plans = await _plans(node, iid)
        r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                          "applicationName": "shop"})
        assert r.status_code == 201
        r = await node.admin.delete(f"/integrations/{iid}")
        assert r.status_code == 400 and "subscriptions" in r.json()["errorDetails"]
    await eventually(lambda: _not(connected(node, iid)), what="agent gone")
    r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                      "applicationName": "other"})
    assert r.status_code == 409 and f"no agent is connected for integration {iid}" in r.json()["errorDetails"]

    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid))
        r = await node.admin.delete(f"/integrations/{iid}", params={"force": "true"})
        assert r.status_code == 204, r.text
    assert _keys(c) == []  # forced with an agent linked: the key was revoked
    assert (await node.admin.get(f"/packages/{package_id}")).status_code == 404
    assert (await node.admin.get(f"/plans/{plans['Gold']}")).status_code == 404
    assert (await node.admin.get("/subscriptions")).json() == []
    assert [x for x in (await node.admin.get("/apis")).json()["apiResponse"]] == []


async def _not(awaitable: Any) -> bool:
    return not await awaitable


async def test_deleting_the_application_revokes_its_provider_key(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    api = make_api(c, "Orders")
    make_usage_plan(c, "Gold", [(api, "prod")])
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid))
        await ingest(node, iid)
        package_id, plans = await _plans(node, iid)
        r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                          "applicationName": "shop"})
        assert r.status_code == 201, r.text
        assert len(_keys(c)) == 1
        r = await node.admin.delete(f"/applications/{r.json()['id']}")
        assert r.status_code == 204, r.text
        assert _keys(c) == []


async def test_a_federated_api_cannot_be_activated(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid))
        await ingest(node, iid)
    package_id, _ = await _plans(node, iid)
    api_id = (await node.admin.get(f"/packages/{package_id}")).json()["packageResponse"]["apiIds"][0]
    r = await node.admin.put(f"/apis/{api_id}/activate")
    assert r.status_code == 400
    assert "federated" in r.json()["errorDetails"] and "execute-api" in r.json()["errorDetails"]
