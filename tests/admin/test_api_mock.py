"""PUT /apis/{id}/mock/enable|disable and mocked answers through the gateway."""

from __future__ import annotations

from typing import Any

from tests.gateway.test_runtime import API_KEY_RULE, add_action
from tests.support.node import Node
from tests.support.upstream import Upstream


def mock_spec(url: str) -> dict[str, Any]:
    pet = {"$ref": "#/components/schemas/Pet"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Mocky", "version": "1.0"},
        "servers": [{"url": url}],
        "paths": {
            "/echo": {"get": {"responses": {
                "200": {"description": "ok", "content": {
                    "application/json": {"example": {"name": "rex", "id": 7}},
                    "application/xml": {"example": "<pet><name>rex</name></pet>"}}},
                "404": {"description": "missing", "content": {"application/json": {"examples": {
                    "gone": {"value": {"error": "no such pet"}}}}}},
            }}},
            "/echo/{id}": {"get": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": pet}}}}}},
            "/sink": {"post": {"responses": {"201": {"description": "created"}}}},
        },
        "components": {"schemas": {"Pet": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string", "example": "tom"},
            "born": {"type": "string", "format": "date"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["cat", "dog"]}}}}}},
    }


async def test_mock_enable_answers_from_examples_then_disable(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(mock_spec(upstream.url))
    r = await node.admin.put(f"/apis/{api['id']}/mock/enable?retainDefaultMockResponses=true")
    assert r.status_code == 200, r.text
    assert r.json()["apiResponse"]["api"]["mockService"]["enableMock"] is True
    await node.reload()
    r = await node.gw.get("/Mocky/1.0/echo")
    assert r.status_code == 200 and r.json() == {"name": "rex", "id": 7}
    assert r.headers["x-portico-mocked"] == "true"
    r = await node.gw.get("/Mocky/1.0/echo", headers={"Accept": "text/html, application/xml;q=0.9"})
    assert r.headers["content-type"] == "application/xml" and r.text == "<pet><name>rex</name></pet>"
    r = await node.gw.get("/Mocky/1.0/echo", headers={"x-portico-mock-status": "404"})
    assert r.status_code == 404 and r.json() == {"error": "no such pet"}
    r = await node.gw.get("/Mocky/1.0/echo/3")  # generated from the schema
    assert r.json() == {"id": 0, "name": "tom", "born": "2024-01-01", "tags": ["cat"]}
    r = await node.gw.post("/Mocky/1.0/sink", content=b"x")
    assert r.status_code == 201 and r.content == b""

    r = await node.admin.put(f"/apis/{api['id']}/mock/disable")
    assert r.status_code == 200 and r.json()["apiResponse"]["api"]["mockService"]["enableMock"] is False
    await node.reload()
    r = await node.gw.get("/Mocky/1.0/echo")
    assert r.status_code == 200 and r.json()["method"] == "GET" and "x-portico-mocked" not in r.headers


async def test_mocked_api_still_enforces_policies(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(mock_spec("http://127.0.0.1:1"))  # nothing listens there
    await add_action(node, api, "evaluatePolicy", "IAM", API_KEY_RULE)
    assert (await node.admin.put(f"/apis/{api['id']}/mock/enable")).status_code == 200
    await node.reload()
    assert (await node.gw.get("/Mocky/1.0/echo")).status_code in (401, 403)


async def test_mock_bad_inputs(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(mock_spec(upstream.url))
    r = await node.admin.put(f"/apis/{api['id']}/mock/enable?retainDefaultMockResponses=maybe")
    assert r.status_code == 400 and "retainDefaultMockResponses" in r.json()["errorDetails"]
    stored = (await node.admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]
    assert stored["mockService"]["enableMock"] is False  # untouched
    r = await node.admin.put("/apis/no-such-api/mock/enable")
    assert r.status_code == 404 and "errorDetails" in r.json()
    assert (await node.admin.get(f"/apis/{api['id']}/mock/enable")).status_code == 405
