"""A federated API gets its versions from its provider: ``POST /apis/{id}/versions`` refuses it."""

from __future__ import annotations

from tests.federation.support import ingest, linked_agent
from tests.support.aws import apigw, make_api, make_usage_plan
from tests.support.node import Node


async def test_no_new_version_of_a_federated_api(node: Node, fresh: str) -> None:
    eu = apigw(fresh, "eu-west-1")
    orders = make_api(eu, "Orders")
    make_usage_plan(eu, "Gold", [(orders, "prod")], quota=None)
    async with linked_agent(node, fresh) as iid:
        assert (await ingest(node, iid))["created"] == 1
    api = (await node.admin.get("/apis")).json()["apiResponse"][0]["api"]
    r = await node.admin.post(f"/apis/{api['id']}/versions", json={"newApiVersion": "v2"})
    # a copy would claim the integration's federation data without being ingested, and could never be activated
    assert r.status_code == 400 and "federated" in r.json()["errorDetails"], r.text
    assert [a["api"]["id"] for a in (await node.admin.get("/apis")).json()["apiResponse"]] == [api["id"]]
