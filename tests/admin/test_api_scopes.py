"""API scopes (issue 5, ``admin/api_scopes.py``): declared in the API's ``scopes`` on create/update,
covering the paths and operations whose ``scopes`` name them, read at ``GET /apis/{id}/scopes``."""

from __future__ import annotations

import random
from typing import Any

import orjson

from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

READS = {"name": "reads", "description": "GET of /echo",
         "references": [{"resourcePath": "/echo", "supportedOperations": ["get"]}]}
ITEMS = {"name": "items", "description": "all of /echo/{id}",
         "references": [{"resourcePath": "/echo/{id}", "supportedOperations": []}]}


async def stored(node: Node, api_id: str) -> dict[str, Any]:
    r = await node.admin.get(f"/apis/{api_id}")
    assert r.status_code == 200, r.text
    api: dict[str, Any] = r.json()["apiResponse"]["api"]
    return api


async def scope_refs(node: Node, api_id: str) -> dict[str, Any]:
    r = await node.admin.get(f"/apis/{api_id}/scopes")
    assert r.status_code == 200, r.text
    return {e["scope"]["name"]: e for e in r.json()["scopeReferences"]}


async def test_scopes_are_declared_read_and_kept_across_reimport(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False, scopes=[READS, ITEMS])
    assert api["scopes"] == [{"name": "reads", "description": "GET of /echo", "policies": []},
                             {"name": "items", "description": "all of /echo/{id}", "policies": []}]
    paths = api["apiDefinition"]["paths"]
    assert paths["/echo"]["get"]["scopes"] == ["reads"] and paths["/echo"]["post"]["scopes"] == []
    assert paths["/echo/{id}"]["scopes"] == ["items"] and "scopes" not in paths["/echo"]
    refs = await scope_refs(node, api["id"])
    assert refs["reads"] == {"references": [{"resourcePath": "/echo", "supportedOperations": ["GET"]}],
                             "scope": {"name": "reads", "description": "GET of /echo", "policies": []}}
    assert refs["items"]["references"] == [{"resourcePath": "/echo/{id}", "supportedOperations": []}]
    one = await node.admin.get(f"/apis/{api['id']}/scopes/reads")
    assert one.status_code == 200 and one.json()["scopeReferences"] == [refs["reads"]], one.text
    missing = await node.admin.get(f"/apis/{api['id']}/scopes/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["errorDetails"], missing.text

    # the reference's way: read the API, edit the operations' scopes, send it back
    body = await stored(node, api["id"])
    body["apiDefinition"]["paths"]["/echo"]["post"]["scopes"] = ["reads"]
    body["apiDefinition"]["paths"]["/cut"]["get"]["scopes"] = ["items"]
    r = await node.admin.put(f"/apis/{api['id']}", json=body)
    assert r.status_code == 200, r.text
    refs = await scope_refs(node, api["id"])
    assert refs["reads"]["references"] == [{"resourcePath": "/echo", "supportedOperations": ["GET", "POST"]}]
    assert refs["items"]["references"] == [{"resourcePath": "/cut", "supportedOperations": ["GET"]},
                                           {"resourcePath": "/echo/{id}", "supportedOperations": []}]

    # a re-import (here an inline OpenAPI document without /cut) keeps the scopes on what still exists
    spec = spec_for(upstream.url)
    del spec["paths"]["/cut"]
    r = await node.admin.put(f"/apis/{api['id']}", json={"type": "openapi", "apiDefinition": spec})
    assert r.status_code == 200, r.text
    refs = await scope_refs(node, api["id"])
    assert refs["reads"]["references"] == [{"resourcePath": "/echo", "supportedOperations": ["GET", "POST"]}]
    assert refs["items"]["references"] == [{"resourcePath": "/echo/{id}", "supportedOperations": []}]

    # metadata-only update with new declarations: 'items' dropped (no mapping uses it), 'reads' kept
    r = await node.admin.put(f"/apis/{api['id']}", json={"scopes": [{"name": "reads", "description": "r"}]})
    assert r.status_code == 200, r.text
    after = r.json()["apiResponse"]["api"]
    assert [s["name"] for s in after["scopes"]] == ["reads"]
    assert "scopes" not in after["apiDefinition"]["paths"]["/echo/{id}"]
    assert (await scope_refs(node, api["id"]))["reads"]["references"][0]["supportedOperations"] == ["GET", "POST"]


async def test_file_uploads_take_scopes_as_json_and_keep_them(node: Node, upstream: Upstream) -> None:
    spec = orjson.dumps(spec_for(upstream.url))
    r = await node.admin.post("/apis", files={"file": ("echo.json", spec, "application/json")},
                              data={"type": "openapi", "scopes": orjson.dumps([READS]).decode()})
    assert r.status_code == 200, r.text
    api_id = r.json()["apiResponse"]["api"]["id"]
    r = await node.admin.put(f"/apis/{api_id}", files={"file": ("echo.json", spec, "application/json")},
                             data={"type": "openapi"})
    assert r.status_code == 200, r.text
    assert (await scope_refs(node, api_id))["reads"]["references"] == \
        [{"resourcePath": "/echo", "supportedOperations": ["GET"]}]
    r = await node.admin.put(f"/apis/{api_id}", files={"file": ("echo.json", spec, "application/json")},
                             data={"type": "openapi", "scopes": "[{"})
    assert r.status_code == 400 and "'scopes'" in r.json()["errorDetails"], r.text


async def test_bad_scopes_are_refused_and_change_nothing(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False, scopes=[READS])
    before = await stored(node, api["id"])
    cases: list[tuple[Any, str]] = [
        ([READS, {"name": "reads"}], "duplicate"),
        ([{"name": "x", "references": [{"resourcePath": "/nope"}]}], "/nope"),
        ([{"name": "x", "references": [{"resourcePath": "/cut", "supportedOperations": ["DELETE"]}]}], "DELETE"),
        ([{"name": ""}], "scopes[0].name"),
        ([{"name": "x", "policies": ["p1"]}], "policies"),
        ([{"name": "x", "color": "red"}], "color"),
        ("reads", "list"),
    ]
    for scopes, named in cases:
        r = await node.admin.put(f"/apis/{api['id']}", json={"scopes": scopes})
        assert r.status_code == 400 and named in r.json()["errorDetails"], (scopes, r.text)
    # an operation naming a scope that the API does not declare
    body = await stored(node, api["id"])
    body["apiDefinition"]["paths"]["/sink"]["post"]["scopes"] = ["writes"]
    r = await node.admin.put(f"/apis/{api['id']}", json=body)
    assert r.status_code == 400 and "'writes'" in r.json()["errorDetails"] and "/sink" in r.json()["errorDetails"]
    r = await node.admin.post("/apis", json={"type": "openapi", "apiDefinition": spec_for(upstream.url, "Other"),
                                             "scopes": [READS, READS]})
    assert r.status_code == 400 and "duplicate" in r.json()["errorDetails"], r.text
    assert (await stored(node, api["id"])) == before
    assert (await node.admin.get("/apis/unknown-api/scopes")).status_code == 404


async def test_scope_used_by_a_mapping_cannot_be_removed(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False, scopes=[READS])
    required = [{"authServerAlias": "local", "scopeName": "read"}]
    r = await node.admin.post("/scopes", json={"scopeName": "readers", "apiScopes": [f"{api['id']}:nope"],
                                               "requiredAuthScopes": required})
    assert r.status_code == 400 and "'nope'" in r.json()["errorDetails"], r.text
    r = await node.admin.post("/scopes", json={"scopeName": "readers", "apiScopes": [f"{api['id']}:reads"],
                                               "requiredAuthScopes": required})
    assert r.status_code == 201, r.text
    mapping = r.json()["scope"]
    refused = await node.admin.put(f"/apis/{api['id']}", json={"scopes": []})
    assert refused.status_code == 400 and "'readers'" in refused.json()["errorDetails"], refused.text
    assert [s["name"] for s in (await stored(node, api["id"]))["scopes"]] == ["reads"]
    # changing what the scope covers, or re-importing, is not a removal
    moved = {**READS, "references": [{"resourcePath": "/cut", "supportedOperations": ["GET"]}]}
    assert (await node.admin.put(f"/apis/{api['id']}", json={"scopes": [moved]})).status_code == 200
    assert (await node.admin.delete(f"/scopes/{mapping['id']}")).status_code == 204
    assert (await node.admin.put(f"/apis/{api['id']}", json={"scopes": []})).status_code == 200
    assert await scope_refs(node, api["id"]) == {}


async def test_random_scope_bodies_are_4xx_not_500(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url), activate=False, scopes=[READS])
    rng = random.Random(5)
    atoms: list[Any] = [None, 1, "", "reads", "/echo", "GET", "get", "*", [], {}, True]
    keys = ["name", "description", "policies", "references", "resourcePath", "supportedOperations"]

    def value(depth: int = 0) -> Any:
        kind = rng.randrange(3 if depth < 3 else 1)
        if kind == 0:
            return rng.choice(atoms)
        if kind == 1:
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(4))}
        return [value(depth + 1) for _ in range(rng.randrange(3))]

    for _ in range(60):
        r = await node.admin.put(f"/apis/{api['id']}", json={"scopes": value()})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert r.json()["errorDetails"]
    body = await stored(node, api["id"])
    del body["systemVersion"]
    for _ in range(30):
        paths = body["apiDefinition"]["paths"]
        paths["/echo"]["get"]["scopes"] = value()
        r = await node.admin.put(f"/apis/{api['id']}", json=body)
        assert r.status_code in (200, 400), r.text
