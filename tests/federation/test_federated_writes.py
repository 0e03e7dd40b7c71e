"""What ingestion owns on a federated API, plan and package is changed at the provider: a
management write that changes it is refused (400), so no change is silently lost at the next
ingestion; what Portico keeps across ingestions stays editable."""

from __future__ import annotations

import json
from typing import Any

from portico.federation.ingest import package_id_for
from tests.federation.support import ingest, linked_agent
from tests.support.aws import apigw, make_api, make_usage_plan
from tests.support.node import Node

OTHER = {"openapi": "3.0.0", "info": {"title": "Orders", "version": "prod"},
         "servers": [{"url": "http://127.0.0.1:9/elsewhere"}],
         "paths": {"/other": {"get": {"responses": {"200": {"description": "ok"}}}}}}


async def _api(node: Node, api_id: str) -> dict[str, Any]:
    r = await node.admin.get(f"/apis/{api_id}")
    assert r.status_code == 200, r.text
    api: dict[str, Any] = r.json()["apiResponse"]["api"]
    return api


def _refused(r: Any, *words: str) -> None:
    assert r.status_code == 400, r.text
    message = r.json()["errorDetails"]
    for word in ("federated", "aws-api-gateway", *words):
        assert word in message, message


async def test_federated_api_definition_is_changed_at_its_provider(node: Node, fresh: str) -> None:
    eu = apigw(fresh, "eu-west-1")
    orders = make_api(eu, "Orders", description="from AWS")
    make_usage_plan(eu, "Gold", [(orders, "prod")], quota=None)
    async with linked_agent(node, fresh, name="aws-prod") as iid:
        assert (await ingest(node, iid))["created"] == 1
        api_id = (await node.admin.get("/apis")).json()["apiResponse"][0]["api"]["id"]
        before = await _api(node, api_id)

        # the definition, as JSON, from a URL's worth of document, or as a file: refused, nothing stored
        r = await node.admin.put(f"/apis/{api_id}", json={"apiDefinition": OTHER, "type": "openapi"})
        _refused(r, "aws-prod", "definition")
        files = {"file": ("orders.json", json.dumps(OTHER).encode(), "application/json")}
        _refused(await node.admin.put(f"/apis/{api_id}", files=files), "definition")
        r = await node.admin.put(f"/apis/{api_id}", json={"apiDescription": "mine"})
        _refused(r, "apiDescription")
        after = await _api(node, api_id)
        assert after["apiDefinition"] == before["apiDefinition"]
        assert after["apiDescription"] == "from AWS" and after["systemVersion"] == before["systemVersion"]

        # what ingestion keeps is Portico's: editable, and still there after the next ingestion
        r = await node.admin.put(f"/apis/{api_id}", json={"maturityState": "Beta", "apiDescription": "from AWS"})
        assert r.status_code == 200, r.text
        # sending back the definition as read changes nothing the provider owns: accepted
        r = await node.admin.put(f"/apis/{api_id}", json={"apiDefinition": before["apiDefinition"],
                                                           "maturityState": "Production"})
        assert r.status_code == 200, r.text
        assert (await ingest(node, iid))["updated"] == 1
    again = await _api(node, api_id)
    assert again["maturityState"] == "Production"
    assert again["apiDefinition"]["paths"] == before["apiDefinition"]["paths"]  # (moto's info.version is a time)
    assert again["apiDescription"] == "from AWS" and again["nativeEndpoint"] == []


async def test_federated_plan_and_package_keep_what_ingestion_owns(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    eu = apigw(fresh, "eu-west-1")
    orders = make_api(eu, "Orders")
    make_usage_plan(eu, "Gold", [(orders, "prod")], quota=None)
    async with linked_agent(node, fresh) as iid:
        await ingest(node, iid)
        plan = (await node.admin.get("/plans")).json()["planResponse"][0]
        for change in ({"name": "Platinum"}, {"description": "cheap"}, {"tags": ["mine"]}, {"version": "2.0"}):
            _refused(await node.admin.put(f"/plans/{plan['id']}", json=change), next(iter(change)))
        # a client sending the plan back as read, with Portico's own terms changed, is fine
        sent = {k: plan[k] for k in ("name", "description", "version", "tags")}
        r = await node.admin.put(f"/plans/{plan['id']}", json={**sent, "Terms": "pay monthly", "deprecated": True})
        assert r.status_code == 200, r.text

        pkg_id = package_id_for(iid)
        pkg = (await node.admin.get(f"/packages/{pkg_id}")).json()["packageResponse"]
        _refused(await node.admin.put(f"/packages/{pkg_id}", json={"apiIds": []}), "apiIds")
        _refused(await node.admin.put(f"/packages/{pkg_id}", json={"planIds": []}), "planIds")
        r = await node.admin.put(f"/packages/{pkg_id}", json={"description": "ours", "apiIds": pkg["apiIds"]})
        assert r.status_code == 200, r.text
        assert r.json()["packageResponse"]["federation"] == {"integrationId": iid}
        await ingest(node, iid)

    plan = (await node.admin.get(f"/plans/{plan['id']}")).json()["planResponse"]
    assert plan["name"] == "Gold" and plan["Terms"] == "pay monthly" and plan["deprecated"] is True
    pkg = (await node.admin.get(f"/packages/{pkg_id}")).json()["packageResponse"]
    assert pkg["description"] == "ours" and pkg["federation"] == {"integrationId": iid}
    assert len(pkg["apiIds"]) == 1 and len(pkg["planIds"]) == 1


async def test_deleting_federated_assets(sqlite_node: Node, fresh: str) -> None:
    """The integration's plans and package go with their provider or the integration: refused.
    A federated API may be deleted (forced: its package lists it); it leaves its plans, and an
    ingestion of it creates it again (counted as created, and NEW in a discovery: not silent)."""
    node = sqlite_node
    eu = apigw(fresh, "eu-west-1")
    orders, stock = make_api(eu, "Orders"), make_api(eu, "Stock")
    make_usage_plan(eu, "Gold", [(orders, "prod"), (stock, "prod")], quota=None)
    async with linked_agent(node, fresh) as iid:
        await ingest(node, iid)
        plan = (await node.admin.get("/plans")).json()["planResponse"][0]
        _refused(await node.admin.delete(f"/plans/{plan['id']}"), "Gold")
        _refused(await node.admin.delete(f"/packages/{package_id_for(iid)}"))
        assert (await node.admin.get(f"/plans/{plan['id']}")).status_code == 200

        apis = {a["api"]["apiName"]: a["api"]["id"] for a in (await node.admin.get("/apis")).json()["apiResponse"]}
        r = await node.admin.delete(f"/apis/{apis['Orders']}")
        assert r.status_code == 400 and "forceDelete=true" in r.json()["errorDetails"], r.text
        assert "remove it from them" not in r.json()["errorDetails"]  # the integration's package cannot be edited
        assert (await node.admin.delete(f"/apis/{apis['Orders']}?forceDelete=true")).status_code == 204
        plan = (await node.admin.get(f"/plans/{plan['id']}")).json()["planResponse"]
        assert plan["federation"]["apiIds"] == [apis["Stock"]]
        pkg = (await node.admin.get(f"/packages/{package_id_for(iid)}")).json()["packageResponse"]
        assert pkg["apiIds"] == [apis["Stock"]]

        found = (await node.admin.post(f"/integrations/{iid}/discover")).json()
        assert {a["name"]: a["state"] for a in found["apis"]} == {"Orders": "NEW", "Stock": "UPDATE"}
        assert (await ingest(node, iid))["created"] == 1
    plan = (await node.admin.get(f"/plans/{plan['id']}")).json()["planResponse"]
    assert sorted(plan["federation"]["apiIds"]) == sorted(apis.values())
