"""Exposing resources and methods (``enabled`` on the paths and operations of ``apiDefinition``):
kept across ``PUT /apis/{id}`` (read, edit, send back) and re-imports, honoured by the gateway."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.admin.test_apis import SWAGGER
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def stored(node: Node, api_id: str) -> dict[str, Any]:
    r = await node.admin.get(f"/apis/{api_id}")
    assert r.status_code == 200, r.text
    api: dict[str, Any] = r.json()["apiResponse"]["api"]
    return api


async def calls(node: Node) -> dict[str, int]:
    """Status of one gateway call per (method, resource) the test looks at."""
    await node.reload()
    out = {}
    for method, path in (("GET", "/echo"), ("POST", "/echo"), ("GET", "/bytes/3"), ("GET", "/echo/7")):
        out[f"{method} {path}"] = (await node.gw.request(method, f"/Echo/1.0{path}")).status_code
    return out


@pytest.fixture
def spec_url(upstream: Upstream) -> Iterator[str]:
    """A URL serving the upstream's OpenAPI document, for re-imports by URL."""
    body = json.dumps(spec_for(upstream.url)).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/openapi.json"
    server.shutdown()
    server.server_close()


async def test_disabling_by_sending_the_api_back_is_kept_and_enforced(
        node: Node, upstream: Upstream, spec_url: str) -> None:
    api = await node.create_api(spec_for(upstream.url))
    everything = {"GET /echo": 200, "POST /echo": 200, "GET /bytes/3": 200, "GET /echo/7": 200}
    assert await calls(node) == everything

    # the reference's way: read the API, switch a method and a resource off, send it back
    body = await stored(node, api["id"])
    body["apiDefinition"]["paths"]["/echo"]["post"]["enabled"] = False
    body["apiDefinition"]["paths"]["/bytes/{id}"]["enabled"] = False
    r = await node.admin.put(f"/apis/{api['id']}", json=body)
    assert r.status_code == 200, r.text
    paths = (await stored(node, api["id"]))["apiDefinition"]["paths"]
    assert paths["/echo"]["post"]["enabled"] is False and paths["/echo"]["get"]["enabled"] is True
    assert paths["/bytes/{id}"]["enabled"] is False and paths["/echo"]["enabled"] is True
    # a hidden method is refused like an undefined one, a hidden resource is not found (the reference: 404)
    off = {**everything, "POST /echo": 405, "GET /bytes/3": 404}
    assert await calls(node) == off
    rendered = (await node.admin.get(f"/apis/{api['id']}", params={"format": "openapi"})).json()
    assert "enabled" not in rendered["paths"]["/echo"]["post"] and "enabled" not in rendered["paths"]["/bytes/{id}"]

    # re-imports by file, URL or inline OpenAPI document keep the settings (the reference retains
    # "Expose to consumers" on update); a resource new to the API is exposed
    spec = spec_for(upstream.url)
    spec["paths"]["/status/{id}"]["post"] = {"responses": {"200": {"description": "ok"}}}
    file = {"file": ("echo.json", json.dumps(spec).encode(), "application/json")}
    for update in ({"files": file, "data": {"type": "openapi"}}, {"json": {"type": "openapi", "url": spec_url}},
                   {"json": {"type": "openapi", "apiDefinition": spec}}):
        r = await node.admin.put(f"/apis/{api['id']}", **update)
        assert r.status_code == 200, r.text
        assert await calls(node) == off, update
    assert (await stored(node, api["id"]))["apiDefinition"]["paths"]["/status/{id}"]["post"]["enabled"] is True

    # and switched on again the same way
    body = await stored(node, api["id"])
    body["apiDefinition"]["paths"]["/echo"]["post"]["enabled"] = True
    body["apiDefinition"]["paths"]["/bytes/{id}"]["enabled"] = True
    assert (await node.admin.put(f"/apis/{api['id']}", json=body)).status_code == 200
    assert await calls(node) == everything


async def test_a_definition_created_with_hidden_operations_keeps_them(node: Node, upstream: Upstream) -> None:
    model = (await node.create_api(spec_for(upstream.url), activate=False))["apiDefinition"]
    model["paths"]["/echo"]["post"]["enabled"] = False
    model["info"]["title"] = "Copy"
    r = await node.admin.post("/apis", json={"apiDefinition": model})
    assert r.status_code == 200, r.text
    assert r.json()["apiResponse"]["api"]["apiDefinition"]["paths"]["/echo"]["post"]["enabled"] is False


async def test_bad_or_emptying_exposure_is_refused_and_changes_nothing(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    before = await stored(node, api["id"])
    body = await stored(node, api["id"])
    body["apiDefinition"]["paths"]["/echo"]["get"]["enabled"] = "no"
    r = await node.admin.put(f"/apis/{api['id']}", json=body)
    assert r.status_code == 400 and "paths['/echo'].get.enabled" in r.json()["errorDetails"], r.text
    # an active API must keep something to expose, as activation requires
    body = await stored(node, api["id"])
    for item in body["apiDefinition"]["paths"].values():
        item["enabled"] = False
    r = await node.admin.put(f"/apis/{api['id']}", json=body)
    assert r.status_code == 400 and "no enabled operation" in r.json()["errorDetails"], r.text
    assert await stored(node, api["id"]) == before
    assert (await calls(node))["GET /echo"] == 200


async def test_a_swagger_api_sent_back_stays_swagger(node: Node) -> None:
    r = await node.admin.post("/apis", json={"type": "swagger", "apiDefinition": SWAGGER})
    assert r.status_code == 200, r.text
    api = r.json()["apiResponse"]["api"]
    body = await stored(node, api["id"])
    body["apiDefinition"]["paths"]["/pets"]["get"]["enabled"] = False
    r = await node.admin.put(f"/apis/{api['id']}", json=body)
    assert r.status_code == 200, r.text
    after = await stored(node, api["id"])
    assert after["apiDefinition"] == body["apiDefinition"]
    assert after["apiDefinition"]["sourceFormat"] == "swagger"
