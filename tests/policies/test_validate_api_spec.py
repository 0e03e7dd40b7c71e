"""validateAPISpec / validateSchema end to end: bodies, parameters, content types, XML, responses."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.test_runtime import add_action
from tests.policies.spec_support import flags, pet_spec, post_action
from tests.support.node import Node
from tests.support.upstream import Upstream

ALL_CHECKS = flags(schemaValidationFlag=True, validateQueryParams=True, validatePathParams=True,
                   validateCookieParams=True, validateContentTypes=True, headersValidationFlag=True)


async def _api(node: Node, upstream: Upstream, params: list[Any], stage: str = "requestPayloadProcessing",
               template: str = "validateAPISpec") -> dict[str, object]:
    api = await node.create_api(pet_spec(upstream.url))
    await add_action(node, api, template, stage, params)
    return api


async def test_request_body_and_parameters(node: Node, upstream: Upstream) -> None:
    await _api(node, upstream, ALL_CHECKS)
    ok = await node.gw.post("/Pets/1.0/echo?limit=3&tag=abc", json={"name": "rex", "age": None, "tags": ["a"]},
                            headers={"X-Mode": "fast"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["method"] == "POST"  # reached the native service
    cases = [
        ("/echo?limit=3", {"age": 3}, {}, "'name' is a required property"),
        ("/echo?limit=3", {"name": "rex", "tags": ["toolong"]}, {}, "field '$.tags[0]'"),
        ("/echo?limit=3", {"name": 5}, {}, "field '$.name'"),
        ("/echo", {"name": "rex"}, {}, "query parameter 'limit' is required"),
        ("/echo?limit=x", {"name": "rex"}, {}, "query parameter 'limit': 'x' is not a valid integer"),
        ("/echo?limit=11", {"name": "rex"}, {}, "query parameter 'limit'"),
        ("/echo?limit=1&tag=A1", {"name": "rex"}, {}, "query parameter 'tag'"),
        ("/echo?limit=1", {"name": "rex"}, {"X-Mode": "warp"}, "header parameter 'X-Mode'"),
    ]
    for path, body, headers, expected in cases:
        r = await node.gw.post("/Pets/1.0" + path, json=body, headers=headers)
        assert r.status_code == 400, (path, body, r.text)
        assert expected in r.json()["Exception"], (expected, r.text)
    r = await node.gw.get("/Pets/1.0/echo/abc")
    assert r.status_code == 400 and "path parameter 'id'" in r.json()["Exception"]
    assert (await node.gw.get("/Pets/1.0/echo/12")).status_code == 200


async def test_content_types_and_malformed_bodies(node: Node, upstream: Upstream) -> None:
    await _api(node, upstream, ALL_CHECKS)
    r = await node.gw.post("/Pets/1.0/echo?limit=1", content=b"name=rex", headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and "content type 'text/csv'" in r.json()["Exception"]
    r = await node.gw.post("/Pets/1.0/echo?limit=1", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["Exception"]
    r = await node.gw.post("/Pets/1.0/echo?limit=1", content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "request body is required" in r.json()["Exception"]


async def test_xml_body_against_xsd(node: Node, upstream: Upstream) -> None:
    await _api(node, upstream, ALL_CHECKS)
    xml = {"Content-Type": "application/xml"}
    good = b"<pet><name>rex</name><age>3</age></pet>"
    assert (await node.gw.post("/Pets/1.0/echo?limit=1", content=good, headers=xml)).status_code == 200
    r = await node.gw.post("/Pets/1.0/echo?limit=1", content=b"<pet><name>rex</name><age>old</age></pet>",
                           headers=xml)
    assert r.status_code == 400 and "age" in r.json()["Exception"], r.text
    r = await node.gw.post("/Pets/1.0/echo?limit=1", content=b"<pet><name>", headers=xml)
    assert r.status_code == 400 and "not well-formed XML" in r.json()["Exception"]


async def test_custom_content_type_maps_to_json(node: Node, upstream: Upstream) -> None:
    await _api(node, upstream, flags(schemaValidationFlag=True))
    custom = {"Content-Type": "application/vnd.pet+stuff"}
    # Unknown content type, not mapped: the body is not validated (as the reference does).
    assert (await node.gw.post("/Pets/1.0/echo?limit=1", content=b'{"age":1}', headers=custom)).status_code == 200
    r = await node.admin.put("/configurations/customContentTypes",
                             json={"application/vnd.pet+stuff": "application/json"})
    assert r.status_code == 200, r.text
    await node.reload()
    r = await node.gw.post("/Pets/1.0/echo?limit=1", content=b'{"age":1}', headers=custom)
    assert r.status_code == 400 and "'name' is a required property" in r.json()["Exception"]
    r = await node.gw.post("/Pets/1.0/echo?limit=1", content=b'{"name":"a"}', headers=custom)
    assert r.status_code == 200


async def test_header_rules(node: Node, upstream: Upstream) -> None:
    rules = {"templateKey": "validateHTTPHeaders", "parameters": [
        {"templateKey": "logicalConnector", "values": ["AND"]},
        {"templateKey": "httpHeaderNonReqValue", "parameters": [
            {"templateKey": "headerKey", "values": ["Content-Type"]},
            {"templateKey": "headerValueNonRequired", "values": ["application/json"]}]},
        {"templateKey": "httpHeaderNonReqValue", "parameters": [{"templateKey": "headerKey", "values": ["X-Req"]}]},
    ]}
    await _api(node, upstream, [*flags(schemaValidationFlag=False), rules])
    r = await node.gw.post("/Pets/1.0/echo", json={"x": 1}, headers={"X-Req": "1"})
    assert r.status_code == 200, r.text
    r = await node.gw.post("/Pets/1.0/echo", json={"x": 1})
    assert r.status_code == 400 and "header 'X-Req' is required" in r.json()["Exception"]
    r = await node.gw.post("/Pets/1.0/echo", content=b"<a/>", headers={"X-Req": "1", "Content-Type": "text/xml"})
    assert r.status_code == 400 and "header 'Content-Type'" in r.json()["Exception"]


async def test_response_validation(node: Node, upstream: Upstream) -> None:
    await _api(node, upstream, flags(schemaValidationFlag=True), stage="responseProcessing")
    # The request is not validated in the response stage; the echo answer has "method".
    assert (await node.gw.post("/Pets/1.0/echo", json={"age": "x"})).status_code == 200
    r = await node.gw.get("/Pets/1.0/echo")  # the spec wants "never" in the GET answer
    assert r.status_code == 400 and "response body" in r.json()["Exception"]
    assert "'never' is a required property" in r.json()["Exception"]


async def test_validate_schema_checks_the_payload_only(node: Node, upstream: Upstream) -> None:
    await _api(node, upstream, flags(schemaValidationFlag=True), template="validateSchema")
    assert (await node.gw.post("/Pets/1.0/echo", json={"name": "rex"})).status_code == 200  # no limit: fine
    r = await node.gw.post("/Pets/1.0/echo", json={"name": 1})
    assert r.status_code == 400 and "field '$.name'" in r.json()["Exception"]


@pytest.mark.parametrize(("template", "params", "field"), [
    ("validateAPISpec", [{"templateKey": "validateQueryParams", "values": ["maybe"]}], "validateQueryParams"),
    ("validateAPISpec", [{"templateKey": "schemaValidationFlag", "values": ["perhaps"]}], "schemaValidationFlag"),
    ("validateAPISpec", [{"templateKey": "validateHTTPHeaders", "parameters": [
        {"templateKey": "logicalConnector", "values": ["XOR"]},
        {"templateKey": "httpHeaderNonReqValue", "parameters": [{"templateKey": "headerKey", "values": ["a"]}]}]}],
     "logicalConnector"),
    ("validateAPISpec", [{"templateKey": "validateHTTPHeaders", "parameters": [
        {"templateKey": "logicalConnector", "values": ["AND"]}]}], "httpHeaderNonReqValue"),
    ("validateAPISpec", [{"templateKey": "noSuchFlag", "values": ["true"]}], "noSuchFlag"),
    ("validateSchema", [{"templateKey": "schemaValidationFlag", "values": ["x"]}], "schemaValidationFlag"),
])
async def test_bad_config_is_400(sqlite_node: Node, template: str, params: list[object], field: str) -> None:
    r = await post_action(sqlite_node, template, params)
    assert r.status_code == 400 and field in r.json()["errorDetails"], r.text


async def test_swagger2_definitions_and_inline_parameters(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    host = upstream.url.removeprefix("http://")
    spec = {
        "swagger": "2.0", "info": {"title": "Swag", "version": "1.0"}, "host": host, "basePath": "/",
        "schemes": ["http"], "consumes": ["application/json"],
        "paths": {"/echo": {"post": {
            "parameters": [
                {"name": "body", "in": "body", "required": True, "schema": {"$ref": "#/definitions/Pet"}},
                {"name": "n", "in": "query", "type": "array", "items": {"type": "integer"}, "maxItems": 2},
            ],
            "responses": {"200": {"description": "ok"}}}}},
        "definitions": {"Pet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
    }
    r = await node.admin.post("/apis", json={"type": "swagger", "apiDefinition": spec})
    assert r.status_code == 200, r.text
    api = r.json()["apiResponse"]["api"]
    assert (await node.admin.put(f"/apis/{api['id']}/activate")).status_code == 200
    await add_action(node, api, "validateAPISpec", "requestPayloadProcessing",
                     flags(schemaValidationFlag=True, validateQueryParams=True))
    assert (await node.gw.post("/Swag/1.0/echo?n=1,2", json={"name": "a"})).status_code == 200
    r = await node.gw.post("/Swag/1.0/echo", json={"nom": "a"})
    assert r.status_code == 400 and "'name' is a required property" in r.json()["Exception"]
    r = await node.gw.post("/Swag/1.0/echo?n=1,x", json={"name": "a"})
    assert r.status_code == 400 and "query parameter 'n'" in r.json()["Exception"]
    r = await node.gw.post("/Swag/1.0/echo?n=1&n=2&n=3", json={"name": "a"})
    assert r.status_code == 400 and "query parameter 'n'" in r.json()["Exception"]


async def test_openapi31_type_unions(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    spec = pet_spec(upstream.url, title="Pets31")
    spec["openapi"] = "3.1.0"
    spec["components"]["schemas"]["Pet"]["properties"]["age"] = {"type": ["integer", "null"]}
    api = await node.create_api(spec)
    await add_action(node, api, "validateAPISpec", "requestPayloadProcessing", flags(schemaValidationFlag=True))
    assert (await node.gw.post("/Pets31/1.0/echo", json={"name": "a", "age": None})).status_code == 200
    r = await node.gw.post("/Pets31/1.0/echo", json={"name": "a", "age": "old"})
    assert r.status_code == 400 and "field '$.age'" in r.json()["Exception"]
