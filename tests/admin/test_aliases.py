"""``/alias`` CRUD: simple and endpoint aliases, validation, unique names, delete while referenced."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.test_runtime import add_action
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

# seeded on first start (issue 5): the local authorization server and the shipped DCR providers
BUILT_IN = {"local", "PingFederate", "OKTA"}


async def _create(node: Node, body: dict[str, Any]) -> dict[str, Any]:
    r = await node.admin.post("/alias", json=body)
    assert r.status_code == 201, r.text
    alias: dict[str, Any] = r.json()["alias"]
    return alias


async def test_simple_and_endpoint_crud(node: Node) -> None:
    simple = await _create(node, {"name": "Region", "type": "simple", "value": "eu", "description": "d"})
    assert simple["value"] == "eu" and simple["id"] and "endPointURI" not in simple
    endpoint = await _create(node, {"name": "Backend", "type": "endpoint", "endPointURI": "http://127.0.0.1:1",
                                    "connectionTimeout": "5", "readTimeout": 7, "passSecurityHeaders": True})
    assert endpoint["connectionTimeout"] == 5 and endpoint["readTimeout"] == 7 and "value" not in endpoint
    listed = (await node.admin.get("/alias")).json()["alias"]
    assert {a["name"] for a in listed} - BUILT_IN == {"Region", "Backend"}
    got = await node.admin.get(f"/alias/{simple['id']}")
    assert got.status_code == 200 and got.json()["alias"]["value"] == "eu"
    r = await node.admin.put(f"/alias/{simple['id']}", json={"name": "Region", "type": "simple", "value": "us"})
    assert r.status_code == 200 and r.json()["alias"]["value"] == "us"
    assert (await node.admin.delete(f"/alias/{simple['id']}")).status_code == 204
    assert (await node.admin.get(f"/alias/{simple['id']}")).status_code == 404
    assert (await node.admin.delete(f"/alias/{simple['id']}")).status_code == 404
    assert (await node.admin.put("/alias/nope", json={"name": "x", "type": "simple", "value": "v"})).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "simple", "value": "v"}, "name"),
    ({"name": "a", "type": "simple"}, "value"),
    ({"name": "a", "type": "simple", "value": 3}, "value"),
    ({"name": "a", "type": "bogus", "value": "v"}, "type"),
    ({"name": "a", "type": "endpoint"}, "endPointURI"),
    ({"name": "a", "type": "endpoint", "endPointURI": "ftp://x"}, "endPointURI"),
    ({"name": "a", "type": "endpoint", "endPointURI": "http://x", "readTimeout": -1}, "readTimeout"),
    ({"name": "a", "type": "endpoint", "endPointURI": "http://x", "connectionTimeout": "soon"}, "connectionTimeout"),
    ({"name": "a", "type": "endpoint", "endPointURI": "http://x", "optimizationTechnique": "zip"},
     "optimizationTechnique"),
    ({"name": "a", "type": "simple", "value": "v", "colour": "red"}, "colour"),
    ({"name": "a}", "type": "simple", "value": "v"}, "name"),
])
async def test_bad_bodies_are_400_naming_the_field(node: Node, body: dict[str, Any], field: str) -> None:
    r = await node.admin.post("/alias", json=body)
    assert r.status_code == 400 and field in r.json()["errorDetails"], r.text
    assert {a["name"] for a in (await node.admin.get("/alias")).json()["alias"]} == BUILT_IN


async def test_other_types_not_supported_and_malformed_json(node: Node) -> None:
    r = await node.admin.post("/alias", json={"name": "t", "type": "httpTransportSecurityAlias"})
    assert r.status_code == 400 and "not supported yet" in r.json()["errorDetails"]
    r = await node.admin.post("/alias", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = await node.admin.post("/alias", json=[1])
    assert r.status_code == 400


async def test_names_are_unique(node: Node) -> None:
    first = await _create(node, {"name": "Same", "type": "simple", "value": "1"})
    r = await node.admin.post("/alias", json={"name": "Same", "type": "simple", "value": "2"})
    assert r.status_code == 400 and "Same" in r.json()["errorDetails"]
    other = await _create(node, {"name": "Other", "type": "simple", "value": "2"})
    r = await node.admin.put(f"/alias/{other['id']}", json={"name": "Same", "type": "simple", "value": "2"})
    assert r.status_code == 400
    assert (await node.admin.get(f"/alias/{first['id']}")).json()["alias"]["value"] == "1"


async def test_delete_refused_while_a_policy_action_references_it(node: Node, upstream: Upstream) -> None:
    alias = await _create(node, {"name": "EchoBackend", "type": "endpoint", "endPointURI": upstream.url})
    api = await node.create_api(spec_for(upstream.url))
    action = await add_action(node, api, "straightThroughRouting", "routing", [
        {"templateKey": "endpointUri", "values": ["${EchoBackend}/${sys:resource_path}"]}])
    r = await node.admin.delete(f"/alias/{alias['id']}")
    assert r.status_code == 400 and "EchoBackend" in r.json()["errorDetails"] and action in r.json()["errorDetails"]
    r = await node.admin.put(f"/alias/{alias['id']}", json={"name": "Renamed", "type": "endpoint",
                                                             "endPointURI": upstream.url})
    assert r.status_code == 400
    assert (await node.admin.get(f"/alias/{alias['id']}")).status_code == 200
