"""Subscriptions to federated plans: keys created and deleted in AWS (moto) through the agent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from portico.federation import keys
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


_NO_KEY_LISTING = (("GET", r"^/apikeys$"),)  # the reference's minimum policy has no GET /apikeys


@pytest.mark.parametrize("deny", [(), _NO_KEY_LISTING], ids=["with-key-listing", "minimum-permissions"])
async def test_concurrent_subscribes_of_one_application_leave_one_live_key(sqlite_node: Node, fresh: str,
                                                                         deny: tuple[tuple[str, str], ...]) -> None:
    """Two POST /subscriptions for the same application, together or a little apart: one wins, the
    other is refused, and the stored key is the one in AWS. (With GET /apikeys the loser used to find
    the winner's key by name and revoke it when its own store write failed.)"""
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    with aws_proxy(fresh, deny=deny) as proxied:
        async with running_agent(agent_env(node, iid, await create_token(node), proxied)):
            await eventually(lambda: connected(node, iid))
            await ingest(node, iid)
            package_id, plans = await _plans(node, iid)
            for delay in (0.0, 0.01, 0.03, 0.05, 0.1):
                r = await node.admin.post("/applications", json={"name": f"shop-{delay}"})
                app_id = r.json()["id"]
                body = {"packageId": package_id, "planId": plans["Gold"], "applicationId": app_id}

                async def later(body: dict[str, str] = body, delay: float = delay) -> Any:
                    await asyncio.sleep(delay)
                    return await node.admin.post("/subscriptions", json=body)

                answers = await asyncio.gather(node.admin.post("/subscriptions", json=body), later())
                statuses = sorted(a.status_code for a in answers)
                assert statuses[0] == 201 and statuses[1] in (400, 409), [a.text for a in answers]
                await asyncio.sleep(0.2)  # a loser's clean-up, if any, is done
                stored = (await node.admin.get(f"/subscriptions/{app_id}")).json()["federatedAccess"]["apiKey"]
                mine = [k for k in _keys(c) if k["tags"].get("portico-application") == app_id]
                assert [k["value"] for k in mine] == [stored], delay


async def test_a_claim_held_elsewhere_refuses_the_subscription(node: Node, fresh: str) -> None:
    """Another node creating a subscription for the application holds its claim in the store: 409."""
    fast_links(node)
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid))
        await ingest(node, iid)
        package_id, plans = await _plans(node, iid)
        app_id = (await node.admin.post("/applications", json={"name": "shop"})).json()["id"]
        token = await keys.claim(node.portico.store, app_id, plans["Gold"], iid)
        body = {"packageId": package_id, "planId": plans["Gold"], "applicationId": app_id}
        r = await node.admin.post("/subscriptions", json=body)
        assert r.status_code == 409 and "is being created" in r.json()["errorDetails"], r.text
        assert _keys(c) == []
        await keys.release(node.portico.store, app_id, token)
        r = await node.admin.post("/subscriptions", json=body)
        assert r.status_code == 201, r.text
        assert len(_keys(c)) == 1


async def test_a_retry_after_a_late_reply_gets_the_same_key(sqlite_node: Node, fresh: str) -> None:
    """CreateApiKey is slow: the first POST /subscriptions times out (504) while the agent still makes
    the key. The retry gets that key, not a second one, within the minimum permissions."""
    node = sqlite_node
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    with aws_proxy(fresh, deny=_NO_KEY_LISTING, slow=(("POST", r"^/apikeys$", 1.5),)) as proxied:
        async with running_agent(agent_env(node, iid, await create_token(node), proxied)):
            fast_links(node, reply_timeout=1.0)
            await eventually(lambda: connected(node, iid))
            fast_links(node, reply_timeout=5.0)
            await ingest(node, iid)
            fast_links(node, reply_timeout=1.0)
            package_id, plans = await _plans(node, iid)
            app_id = (await node.admin.post("/applications", json={"name": "shop"})).json()["id"]
            body = {"packageId": package_id, "planId": plans["Gold"], "applicationId": app_id}
            r = await node.admin.post("/subscriptions", json=body)
            assert r.status_code == 504, r.text
            await eventually(lambda: asyncio.sleep(0, len(_keys(c)) == 1), what="the late key")
            await asyncio.sleep(0.5)  # its attachment too
            r = await node.admin.post("/subscriptions", json=body)
            assert r.status_code == 201, r.text
            (key,) = _keys(c)
            assert r.json()["federatedAccess"]["apiKey"] == key["value"]


async def test_switch_stores_the_new_key_first_and_retries_the_old_keys_deletion(node: Node, fresh: str) -> None:
    """DeleteApiKey is refused for a while: switching plans still succeeds with the new key stored,
    the old key's deletion is recorded and done at a later health check. Switching back meanwhile
    takes the old key up again, which then stays."""
    fast_links(node)
    c = apigw(fresh)
    api = make_api(c, "Orders")
    make_usage_plan(c, "Gold", [(api, "prod")])
    make_usage_plan(c, "Silver", [(api, "prod")])
    make_usage_plan(c, "Bronze", [(api, "prod")])
    iid = await create_integration(node)
    deny: list[tuple[str, str]] = []
    with aws_proxy(fresh, deny=deny) as proxied:
        async with running_agent(agent_env(node, iid, await create_token(node), proxied)):
            await eventually(lambda: connected(node, iid))
            await ingest(node, iid)
            package_id, plans = await _plans(node, iid)
            r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                              "applicationName": "shop"})
            assert r.status_code == 201, r.text
            app_id, gold_key = r.json()["id"], r.json()["federatedAccess"]["apiKey"]

            deny.append(("DELETE", r"^/apikeys/"))
            r = await node.admin.put(f"/subscriptions/{app_id}", json={"newPackageId": package_id,
                                                                       "newPlanId": plans["Silver"]})
            assert r.status_code == 200, r.text
            silver_key = r.json()["federatedAccess"]["apiKey"]
            assert {k["value"] for k in _keys(c)} == {gold_key, silver_key}  # the old one waits
            assert (await node.admin.get(f"/subscriptions/{app_id}")).json()["planId"] == plans["Silver"]
            assert len(await keys.scheduled(node.portico.store, iid)) == 1

            # back to Gold while Gold's key is still waiting for deletion: the same provider
            # subscription, the same key, and it must survive the retry
            r = await node.admin.put(f"/subscriptions/{app_id}", json={"newPackageId": package_id,
                                                                       "newPlanId": plans["Gold"]})
            assert r.status_code == 200, r.text
            assert r.json()["federatedAccess"]["apiKey"] == gold_key
            deny.clear()

            async def settled() -> bool:
                return await keys.scheduled(node.portico.store, iid) == []

            await eventually(settled, what="the scheduled deletions done")
            assert [k["value"] for k in _keys(c)] == [gold_key]
            stored = (await node.admin.get(f"/subscriptions/{app_id}")).json()["federatedAccess"]["apiKey"]
            assert stored == gold_key


async def test_keys_are_masked_for_callers_without_manage_applications(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    for login in ("reader", "owner"):
        r = await node.admin.post("/users", json={"loginId": login, "password": "Reader-pass-1", "firstName": "R",
                                                  "lastName": "R", "emailAddresses": [f"{login}@example.com"]})
        assert r.status_code in (200, 201), r.text
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid))
        await ingest(node, iid)
        package_id, plans = await _plans(node, iid)
        r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                          "applicationName": "shop", "requesterId": "owner"})
        assert r.status_code == 201, r.text
        app_id = r.json()["id"]
    full = (await node.admin.get(f"/subscriptions/{app_id}")).json()
    aws_key = full["federatedAccess"]["apiKey"]
    portico_key = full["accessTokens"]["apiAccessKey"]["apiAccessKey"]
    assert aws_key == _keys(c)[0]["value"] and "*" not in portico_key
    for login, sees in (("reader", False), ("owner", True)):
        async with httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=(login, "Reader-pass-1")) as u:
            body = (await u.get(f"/subscriptions/{app_id}")).json()
        assert (body["federatedAccess"]["apiKey"] == aws_key) is sees, login
        assert (body["accessTokens"]["apiAccessKey"]["apiAccessKey"] == portico_key) is sees, login
        if not sees:
            assert body["federatedAccess"]["apiKey"] == "*" * 32


async def test_forced_delete_of_the_integration_checks_subscriptions_in_its_transaction(sqlite_node: Node,
                                                                                     fresh: str) -> None:
    """While the forced deletion revokes the known keys (slowly), a new subscription is made: the
    deletion is refused rather than deleting that subscription with its key left in AWS."""
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    with aws_proxy(fresh, slow=(("DELETE", r"^/apikeys/", 1.0),)) as proxied:
        async with running_agent(agent_env(node, iid, await create_token(node), proxied)):
            await eventually(lambda: connected(node, iid))
            await ingest(node, iid)
            package_id, plans = await _plans(node, iid)
            body = {"packageId": package_id, "planId": plans["Gold"]}
            assert (await node.admin.post("/subscriptions", json={**body, "applicationName": "a"})).status_code == 201

            async def subscribe_meanwhile() -> Any:
                await asyncio.sleep(0.3)
                return await node.admin.post("/subscriptions", json={**body, "applicationName": "b"})

            deleted, late = await asyncio.gather(
                node.admin.delete(f"/integrations/{iid}", params={"force": "true"}), subscribe_meanwhile())
            assert late.status_code == 201, late.text
            assert deleted.status_code == 409 and "while it was being deleted" in deleted.json()["errorDetails"]
            r = await node.admin.get(f"/subscriptions/{late.json()['id']}")
            assert r.status_code == 200 and r.json()["federatedAccess"]["apiKey"] in {k["value"] for k in _keys(c)}
            # once nothing moves, the forced deletion goes through and revokes the keys
            r = await node.admin.delete(f"/integrations/{iid}", params={"force": "true"})
            assert r.status_code == 204, r.text
    assert _keys(c) == []


async def test_deleting_the_application_during_a_plan_switch_leaves_no_key(sqlite_node: Node, fresh: str) -> None:
    """DELETE /applications/{id} arrives while a switch to another federated plan holds the
    application's claim (its CreateApiKey is slow). The deletion waits for the switch and revokes the
    key the switch stored; before, it revoked the old key and deleted the new grant, whose key stayed
    in AWS."""
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    api = make_api(c, "Orders")
    make_usage_plan(c, "Gold", [(api, "prod")])
    make_usage_plan(c, "Silver", [(api, "prod")])
    iid = await create_integration(node)
    slow: list[tuple[str, str, float]] = []
    with aws_proxy(fresh, slow=slow) as proxied:
        async with running_agent(agent_env(node, iid, await create_token(node), proxied)):
            await eventually(lambda: connected(node, iid))
            await ingest(node, iid)
            package_id, plans = await _plans(node, iid)
            r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                              "applicationName": "shop"})
            assert r.status_code == 201, r.text
            app_id = r.json()["id"]
            slow += [("POST", r"^/apikeys$", 0.6), ("DELETE", r"^/apikeys/", 0.6)]

            async def delete_later() -> httpx.Response:
                await asyncio.sleep(0.2)  # the switch holds the claim, its new key not yet made
                return await node.admin.delete(f"/applications/{app_id}")

            switched, deleted = await asyncio.gather(
                node.admin.put(f"/subscriptions/{app_id}", json={"newPackageId": package_id,
                                                                 "newPlanId": plans["Silver"]}),
                delete_later())
            assert switched.status_code == 200, switched.text
            assert deleted.status_code in (204, 409), deleted.text
            if deleted.status_code == 409:  # refused rather than racing: a retry deletes it
                deleted = await node.admin.delete(f"/applications/{app_id}")
                assert deleted.status_code == 204, deleted.text
            slow.clear()
            assert (await node.admin.get(f"/applications/{app_id}")).status_code == 404

            async def no_keys() -> bool:
                return await keys.scheduled(node.portico.store, iid) == [] and _keys(c) == []

            await eventually(no_keys, what="no key left in AWS")


async def test_bulk_delete_of_applications_never_strands_a_grant(sqlite_node: Node, fresh: str) -> None:
    """DELETE /applications?ids=a,b where AWS refuses to delete b's key: before, a's key was revoked,
    then b's revocation failed and both applications stayed, a's grant pointing at a deleted key.
    Now both are deleted in one transaction that schedules their keys; a's goes at once, b's stays
    scheduled and goes at a health check once AWS allows it."""
    node = sqlite_node
    fast_links(node)
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    iid = await create_integration(node)
    deny: list[tuple[str, str]] = []
    with aws_proxy(fresh, deny=deny) as proxied:
        async with running_agent(agent_env(node, iid, await create_token(node), proxied)):
            await eventually(lambda: connected(node, iid))
            await ingest(node, iid)
            package_id, plans = await _plans(node, iid)
            apps = []
            for name in ("first", "second"):
                r = await node.admin.post("/subscriptions", json={"packageId": package_id, "planId": plans["Gold"],
                                                                  "applicationName": name})
                assert r.status_code == 201, r.text
                apps.append((r.json()["id"], r.json()["federatedAccess"]["apiKey"]))
            ids = {k["value"]: k["id"] for k in _keys(c)}
            deny.append(("DELETE", rf"^/apikeys/{ids[apps[1][1]]}$"))

            r = await node.admin.delete("/applications", params={"ids": ",".join(a for a, _ in apps)})
            assert r.status_code == 204, r.text
            for app_id, _ in apps:
                assert (await node.admin.get(f"/applications/{app_id}")).status_code == 404
            assert (await node.admin.get("/subscriptions")).json() == []
            assert [k["value"] for k in _keys(c)] == [apps[1][1]]  # the first key went, the second waits
            (waiting,) = await keys.scheduled(node.portico.store, iid)
            assert waiting["applicationId"] == apps[1][0]

            deny.clear()  # AWS allows it again: the next health rounds delete it

            async def no_keys() -> bool:
                return await keys.scheduled(node.portico.store, iid) == [] and _keys(c) == []

            await eventually(no_keys, what="the second key deleted at a health check")
