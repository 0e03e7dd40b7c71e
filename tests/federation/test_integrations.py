"""``/integrations`` without an agent: validation, CRUD, status, and commands refused while no agent is linked."""

from __future__ import annotations

from tests.federation.support import create_integration
from tests.support.node import Node


async def test_create_list_get_update_delete(sqlite_node: Node) -> None:
    node = sqlite_node
    r = await node.admin.post("/integrations", json={"name": "AWS prod", "description": "eu",
                                                     "provider": "aws-api-gateway"})
    assert r.status_code == 201, r.text
    created = r.json()
    iid = created["id"]
    assert created["name"] == "AWS prod" and created["provider"] == "aws-api-gateway"
    assert created["status"]["agentStatus"] == "DISCONNECTED"
    assert created["status"]["lastHeartbeat"] is None and created["status"]["lastDiscovery"] is None

    listed = (await node.admin.get("/integrations")).json()["integrations"]
    assert [i["id"] for i in listed] == [iid]

    r = await node.admin.put(f"/integrations/{iid}", json={"name": "AWS production"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "AWS production" and r.json()["description"] == "eu"
    assert (await node.admin.get(f"/integrations/{iid}")).json()["name"] == "AWS production"

    assert (await node.admin.delete(f"/integrations/{iid}")).status_code == 204
    r = await node.admin.get(f"/integrations/{iid}")
    assert r.status_code == 404 and iid in r.json()["errorDetails"]


async def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(sqlite_node: Node) -> None:
    node = sqlite_node
    cases = [
        ({"name": "x", "provider": "azure"}, "provider"),
        ({"provider": "aws-api-gateway"}, "name"),
        ({"name": "  ", "provider": "aws-api-gateway"}, "name"),
        ({"name": 3, "provider": "aws-api-gateway"}, "name"),
        ({"name": "x", "provider": "aws-api-gateway", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        r = await node.admin.post("/integrations", json=body)
        assert r.status_code == 400, (body, r.text)
        assert field in r.json()["errorDetails"]
    r = await node.admin.post("/integrations", content=b"[1]", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert (await node.admin.get("/integrations")).json()["integrations"] == []

    iid = await create_integration(node)
    r = await node.admin.put(f"/integrations/{iid}", json={"provider": "other"})
    assert r.status_code == 400 and "provider" in r.json()["errorDetails"]
    for name in (None, "", "   ", 7):
        r = await node.admin.put(f"/integrations/{iid}", json={"name": name})
        assert r.status_code == 400 and "name" in r.json()["errorDetails"], (name, r.text)
    assert (await node.admin.get(f"/integrations/{iid}")).json()["name"] == "aws"
    assert (await node.admin.put("/integrations/nope", json={"name": "x"})).status_code == 404
    assert (await node.admin.delete("/integrations/nope")).status_code == 404


async def test_commands_need_a_connected_agent(sqlite_node: Node) -> None:
    node = sqlite_node
    iid = await create_integration(node)
    for path in ("discover", "ingest"):
        r = await node.admin.post(f"/integrations/{iid}/{path}")
        assert r.status_code == 409, r.text
        assert r.json()["errorDetails"] == f"no agent is connected for integration {iid}"
    assert (await node.admin.post("/integrations/nope/discover")).status_code == 404
    r = await node.admin.post(f"/integrations/{iid}/ingest", json={"apiIds": "all"})
    assert r.status_code == 400 and "apiIds" in r.json()["errorDetails"]
    r = await node.admin.get(f"/integrations/{iid}/ingestJobs/none")
    assert r.status_code == 404


async def test_integration_writes_need_manage_apis(sqlite_node: Node) -> None:
    node = sqlite_node
    r = await node.admin.post("/users", json={"loginId": "viewer", "password": "Viewer-pass-1", "firstName": "V",
                                              "lastName": "W", "emailAddresses": ["v@example.com"]})
    assert r.status_code in (200, 201), r.text
    import httpx

    async with httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=("viewer", "Viewer-pass-1")) as c:
        r = await c.post("/integrations", json={"name": "x", "provider": "aws-api-gateway"})
        assert r.status_code == 403 and "Manage APIs" in r.json()["errorDetails"]
        assert (await c.get("/integrations")).status_code == 200
