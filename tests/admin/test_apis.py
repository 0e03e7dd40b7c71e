"""``/apis`` through the real management API on both store backends."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

SWAGGER: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "Pets", "version": "2.1"},
    "host": "127.0.0.1:1",
    "basePath": "/v2",
    "schemes": ["http"],
    "paths": {"/pets": {"get": {"responses": {"200": {"description": "ok"}}}}},
}


async def _create_multipart(node: Node, content: bytes, name: str = "spec.json", **fields: str) -> Any:
    files = {"file": (name, content, "application/octet-stream")}
    return await node.admin.post("/apis", files=files, data=fields)


async def test_create_by_multipart_upload_keeps_source_and_default_policy(node: Node, upstream: Upstream) -> None:
    spec = spec_for(upstream.url)
    r = await _create_multipart(node, json.dumps(spec).encode(), apiName="Echo", apiVersion="1.0", type="openapi")
    assert r.status_code == 200, r.text
    api = r.json()["apiResponse"]["api"]
    assert api["apiName"] == "Echo" and api["apiVersion"] == "1.0" and api["isActive"] is False
    assert api["nativeEndpoint"][0]["uri"] == upstream.url
    assert api["apiDefinition"]["paths"]["/echo"]["get"]["enabled"] is True
    policy = (await node.admin.get(f"/policies/{api['policies'][0]}")).json()["policy"]
    stages = {s["stageKey"]: s for s in policy["policyEnforcements"]}
    assert set(stages) == {"transport", "routing"}
    routing_id = stages["routing"]["enforcements"][0]["enforcementObjectId"]
    action = (await node.admin.get(f"/policyActions/{routing_id}")).json()["policyAction"]
    assert action["templateKey"] == "straightThroughRouting"
    assert action["parameters"][0]["values"] == [f"{upstream.url}/${{sys:resource_path}}"]
    source = await node.admin.get(f"/apis/{api['id']}/source")
    assert json.loads(source.content) == spec


async def test_create_from_yaml_swagger_upload(node: Node) -> None:
    r = await _create_multipart(node, yaml.safe_dump(SWAGGER).encode(), "pets.yaml", type="swagger")
    assert r.status_code == 200, r.text
    api = r.json()["apiResponse"]["api"]
    assert (api["apiName"], api["apiVersion"]) == ("Pets", "2.1")
    assert api["nativeEndpoint"][0]["uri"] == "http://127.0.0.1:1/v2"
    rendered = (await node.admin.get(f"/apis/{api['id']}", params={"format": "openapi"})).json()
    assert rendered["openapi"].startswith("3.") and rendered["servers"][0]["url"] == "http://127.0.0.1:1/v2"
    swagger = (await node.admin.get(f"/apis/{api['id']}", params={"format": "swagger"})).json()
    assert swagger["swagger"] == "2.0" and "/pets" in swagger["paths"]


async def test_unquoted_yaml_version_is_the_version_as_written(node: Node) -> None:
    # "version: 1.10" unquoted is a float to YAML; the API is version 1.10, not 1.1
    text = b"swagger: 2.0\ninfo:\n  title: Tens\n  version: 1.10\nhost: 127.0.0.1:1\npaths: {}\n"
    r = await _create_multipart(node, text, "tens.yaml", type="swagger")
    assert r.status_code == 200, r.text
    api = r.json()["apiResponse"]["api"]
    assert (api["apiName"], api["apiVersion"]) == ("Tens", "1.10")


@pytest.fixture
def spec_server() -> Iterator[str]:
    body = json.dumps(SWAGGER).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            status = 200 if self.path == "/swagger.json" else 404
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_create_by_url(node: Node, spec_server: str) -> None:
    r = await node.admin.post("/apis", json={"type": "swagger", "url": f"{spec_server}/swagger.json"})
    assert r.status_code == 200, r.text
    assert r.json()["apiResponse"]["api"]["apiName"] == "Pets"
    missing = await node.admin.post("/apis", json={"type": "swagger", "url": f"{spec_server}/nope.json"})
    assert missing.status_code == 400 and "404" in missing.json()["errorDetails"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"apiName": "x"}, "one of 'url', 'apiDefinition'"),
        ({"apiDefinition": "text"}, "apiDefinition"),
        ({"apiDefinition": {"openapi": "3.0.0", "info": {"title": "t"}}}, "invalid API definition"),
        ({"apiDefinition": {"swagger": "1.2", "info": {"title": "t", "version": "1"}, "paths": {}}}, "unsupported"),
        ({"type": "raml", "apiDefinition": SWAGGER}, "type"),
        ({"type": "openapi", "apiDefinition": SWAGGER}, "swagger"),
        ({"url": "ftp://example/spec"}, "http"),
        ({"url": 5}, "url"),
    ],
)
async def test_bad_definitions_are_400_and_store_nothing(node: Node, body: dict[str, Any], fragment: str) -> None:
    r = await node.admin.post("/apis", json=body)
    assert r.status_code == 400, r.text
    assert fragment.lower() in r.json()["errorDetails"].lower()
    assert (await node.admin.get("/apis")).json() == {"apiResponse": []}
    assert await node.user_ids("/policyActions", "policyAction") == []


async def test_malformed_bodies(node: Node) -> None:
    r = await node.admin.post("/apis", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["errorDetails"]
    multipart = {"content-type": "multipart/form-data; boundary=x"}
    r = await node.admin.post("/apis", content=b"--x\r\nbroken", headers=multipart)
    assert r.status_code == 400
    r = await _create_multipart(node, b"openapi: [3", "bad.yaml")
    assert r.status_code == 400 and "invalid API definition" in r.json()["errorDetails"]
    r = await node.admin.post("/apis", files={"other": ("a", b"x")})
    assert r.status_code == 400 and "'file'" in r.json()["errorDetails"]
    big = b"{" + b" " * (11 * 1024 * 1024) + b"}"
    r = await node.admin.post("/apis", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413


async def test_duplicate_name_and_version_conflicts(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url), activate=False)
    r = await node.admin.post("/apis", json={"type": "openapi", "apiDefinition": spec_for(upstream.url)})
    assert r.status_code == 409


async def test_list_get_paging_and_unknown_ids(node: Node, upstream: Upstream) -> None:
    a = await node.create_api(spec_for(upstream.url, "A"), activate=False)
    b = await node.create_api(spec_for(upstream.url, "B"), activate=False)
    listed = (await node.admin.get("/apis")).json()["apiResponse"]
    assert [x["api"]["apiName"] for x in listed] == ["A", "B"]
    page = (await node.admin.get("/apis", params={"from": 1, "size": 1})).json()["apiResponse"]
    assert [x["api"]["id"] for x in page] == [b["id"]]
    only = (await node.admin.get("/apis", params={"apiIds": a["id"]})).json()["apiResponse"]
    assert [x["api"]["id"] for x in only] == [a["id"]]
    assert (await node.admin.get("/apis", params={"size": "x"})).status_code == 400
    missing = await node.admin.get("/apis/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["errorDetails"]
    assert (await node.admin.get(f"/apis/{a['id']}", params={"format": "raml"})).status_code == 400


async def test_activate_deactivate_and_delete_rules(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=True)
    again = await node.admin.put(f"/apis/{api['id']}/activate")
    assert again.status_code == 400 and "already active" in again.json()["errorDetails"]
    active_delete = await node.admin.delete(f"/apis/{api['id']}")
    assert active_delete.status_code == 400 and "deactivate" in active_delete.json()["errorDetails"]
    assert (await node.admin.put(f"/apis/{api['id']}/deactivate")).status_code == 200
    app = (await node.admin.post("/applications", json={"name": "consumer"})).json()
    await node.admin.put(f"/applications/{app['id']}/apis", json={"apiIDs": [api["id"]]})
    blocked = await node.admin.delete(f"/apis/{api['id']}")
    assert blocked.status_code == 400 and "forceDelete" in blocked.json()["errorDetails"]
    assert (await node.admin.delete(f"/apis/{api['id']}", params={"forceDelete": "true"})).status_code == 204
    assert (await node.admin.get(f"/apis/{api['id']}")).status_code == 404
    assert (await node.admin.get(f"/applications/{app['id']}/apis")).json() == {"apiIDs": []}
    assert await node.user_ids("/policies", "policy") == []
    assert await node.user_ids("/policyActions", "policyAction") == []


async def test_bulk_delete(node: Node, upstream: Upstream) -> None:
    a = await node.create_api(spec_for(upstream.url, "A"), activate=False)
    b = await node.create_api(spec_for(upstream.url, "B"), activate=True)
    r = await node.admin.delete("/apis", params={"apiIds": f"{a['id']},{b['id']}"})
    assert r.status_code == 400  # b is active: nothing is deleted
    assert len((await node.admin.get("/apis")).json()["apiResponse"]) == 2
    await node.admin.put(f"/apis/{b['id']}/deactivate")
    assert (await node.admin.delete("/apis", params={"apiIds": f"{a['id']},{b['id']}"})).status_code == 204
    assert (await node.admin.get("/apis")).json() == {"apiResponse": []}


async def test_update_from_inline_definition_moves_default_routing(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for("http://127.0.0.1:1"), activate=False)
    r = await node.admin.put(f"/apis/{api['id']}", json={"apiDefinition": spec_for(upstream.url), "type": "openapi"})
    assert r.status_code == 200, r.text
    updated = r.json()["apiResponse"]["api"]
    assert updated["nativeEndpoint"][0]["uri"] == upstream.url and updated["systemVersion"] == 2
    policy = (await node.admin.get(f"/policies/{api['policies'][0]}")).json()["policy"]
    routing = next(s for s in policy["policyEnforcements"] if s["stageKey"] == "routing")
    action_id = routing["enforcements"][0]["enforcementObjectId"]
    action = (await node.admin.get(f"/policyActions/{action_id}")).json()["policyAction"]
    assert action["parameters"][0]["values"] == [f"{upstream.url}/${{sys:resource_path}}"]
    stale = await node.admin.put(f"/apis/{api['id']}", json={"apiDescription": "x", "systemVersion": 1})
    assert stale.status_code == 409
    broken = await node.admin.put(f"/apis/{api['id']}", json={"apiDefinition": {"openapi": "3.0.0"}})
    assert broken.status_code == 400
    after = (await node.admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]
    assert after["systemVersion"] == 2


async def test_versions_with_retained_applications(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    app = (await node.admin.post("/applications", json={"name": "consumer", "apiIDs": [api["id"]]})).json()
    r = await node.admin.post(f"/apis/{api['id']}/versions", json={"newApiVersion": "2.0", "retainApplications": True})
    assert r.status_code == 200, r.text
    v2 = r.json()["apiResponse"]["api"]
    assert v2["apiVersion"] == "2.0" and v2["policies"] != api["policies"]
    versions = (await node.admin.get(f"/apis/{api['id']}/versions")).json()["versions"]
    assert [v["versionNumber"] for v in versions] == ["1.0", "2.0"]
    registered = (await node.admin.get(f"/applications/{app['id']}/apis")).json()["apiIDs"]
    assert set(registered) == {api["id"], v2["id"]}
    not_latest = await node.admin.post(f"/apis/{api['id']}/versions", json={"newApiVersion": "3.0"})
    assert not_latest.status_code == 400 and "latest" in not_latest.json()["errorDetails"]
    dup = await node.admin.post(f"/apis/{v2['id']}/versions", json={"newApiVersion": "1.0"})
    assert dup.status_code == 409
    assert (await node.admin.post(f"/apis/{v2['id']}/versions", json={})).status_code == 400
    apps = (await node.admin.get(f"/apis/{v2['id']}/applications")).json()["applications"]
    assert [a["id"] for a in apps] == [app["id"]]


async def test_management_requires_valid_credentials(node: Node) -> None:
    anonymous = await node.gw.get(f"{node.base}/rest/apigateway/apis")
    assert anonymous.status_code == 401 and "errorDetails" in anonymous.json()
    wrong = await node.gw.get(f"{node.base}/rest/apigateway/apis", auth=("Administrator", "manage"))
    assert wrong.status_code == 401
    unknown = await node.gw.get(f"{node.base}/rest/apigateway/apis", auth=("nobody", "x"))
    assert unknown.status_code == 401
    health = await node.gw.get(f"{node.base}/rest/apigateway/health")
    assert health.status_code == 200 and health.json()["status"] == "green"
    for sub in ("engine", "admin"):
        assert (await node.gw.get(f"{node.base}/rest/apigateway/health/{sub}")).json()["status"] == "green"


async def test_unknown_route_and_method(node: Node) -> None:
    r = await node.admin.get("/nothing-here")
    assert r.status_code == 404 and "errorDetails" in r.json()
    r = await node.admin.patch("/apis")
    assert r.status_code == 405 and "errorDetails" in r.json()


async def test_serves_its_own_openapi_document(node: Node) -> None:
    doc = (await node.admin.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.") and "/apis/{apiId}/activate" in doc["paths"]
    assert "post" in doc["paths"]["/applications"]


# -- defects found in review (issue 2 section 3) -------------------------------------------------


@pytest.mark.parametrize(("doc", "named"), [
    ({**SWAGGER, "basePath": 5}, "basePath: expected a string"),
    ({**SWAGGER, "host": True}, "host: expected a string"),
    ({**SWAGGER, "definitions": "Pet"}, "definitions: expected a mapping"),
    ({**SWAGGER, "schemes": "https"}, "schemes: expected a list"),
    ({**SWAGGER, "securityDefinitions": {"o": {"type": "oauth2", "scopes": ["read"]}}},
     "securityDefinitions.o.scopes"),
    ({**SWAGGER, "paths": {"/pets": {"get": {"parameters": [{"in": "query"}], "responses": {}}}}},
     "paths./pets.get.parameters[0].name"),
    ({"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "servers": [{"url": 5}], "paths": {}},
     "servers[0].url"),
    ({"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": {}, "components": {"schemas": "x"}},
     "components.schemas: expected a mapping"),
    ({"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": {}, "components": {
        "securitySchemes": {"o": {"type": "oauth2", "flows": "implicit"}}}}, "components.securitySchemes.o.flows"),
    ({"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": {"/a": {"post": {
        "requestBody": {"content": {"application/json": "x"}}, "responses": {}}}}},
     "paths./a.post.requestBody.content.application/json"),
])
async def test_misshapen_documents_are_400_even_without_validation(node: Node, doc: dict[str, Any],
                                                                   named: str) -> None:
    # openAPIImporterValidation is off by default: these were stored (or broke the import with a 500),
    # and then every GET ?format= of the API answered 500
    r = await _create_multipart(node, json.dumps(doc).encode())
    assert r.status_code == 400 and named in r.json()["errorDetails"], r.text
    assert (await node.admin.get("/apis")).json() == {"apiResponse": []}
    api = await node.create_api(SWAGGER, activate=False, type="swagger")
    before = (await node.admin.get(f"/apis/{api['id']}")).json()
    r = await node.admin.put(f"/apis/{api['id']}", files={"file": ("s.json", json.dumps(doc).encode())})
    assert r.status_code == 400 and named in r.json()["errorDetails"], r.text
    assert (await node.admin.get(f"/apis/{api['id']}")).json() == before


async def test_openapi_31_boolean_schemas_render_as_swagger(node: Node) -> None:
    doc = {"openapi": "3.1.0", "info": {"title": "Forms", "version": "1"}, "paths": {"/f": {"post": {
        "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": {"anything": True, "name": {"type": "string"}}}}}},
        "parameters": [{"name": "q", "in": "query", "schema": True}],
        "security": None, "responses": {"200": {"description": "ok"}}}}}}
    r = await _create_multipart(node, json.dumps(doc).encode())
    assert r.status_code == 200, r.text
    swagger = await node.admin.get(f"/apis/{r.json()['apiResponse']['api']['id']}", params={"format": "swagger"})
    assert swagger.status_code == 200, swagger.text
    params = swagger.json()["paths"]["/f"]["post"]["parameters"]
    assert [(p["name"], p["in"]) for p in params] == [("q", "query"), ("anything", "formData"), ("name", "formData")]


async def test_renaming_by_update_is_refused(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    r = await node.admin.put(f"/apis/{api['id']}", json={"apiName": "Other", "apiDescription": "d"})
    assert r.status_code == 400 and "'apiName'" in r.json()["errorDetails"], r.text
    after = (await node.admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]
    assert (after["apiName"], after["apiDescription"], after["systemVersion"]) == ("Echo", "", 1)
    same = await node.admin.put(f"/apis/{api['id']}", json={"apiName": "Echo", "apiDescription": "d"})
    assert same.status_code == 200 and same.json()["apiResponse"]["api"]["apiDescription"] == "d", same.text
    cleared = await node.admin.put(f"/apis/{api['id']}", json={"apiDescription": ""})
    assert cleared.json()["apiResponse"]["api"]["apiDescription"] == "", cleared.text


async def test_bulk_delete_naming_an_id_twice(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    r = await node.admin.delete("/apis", params={"apiIds": f"{api['id']},{api['id']}"})
    assert r.status_code == 204, r.text
    assert (await node.admin.get("/apis")).json() == {"apiResponse": []}


async def test_deleting_an_api_of_a_package(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    other = await node.create_api(spec_for(upstream.url, "Other"), activate=False)
    plan = (await node.admin.post("/plans", json={"name": "P"})).json()["planResponse"]
    r = await node.admin.post("/packages", json={"name": "K", "apiIds": [api["id"], other["id"]],
                                                 "planIds": [plan["id"]]})
    package_id = r.json()["packageResponse"]["id"]
    refused = await node.admin.delete(f"/apis/{api['id']}")
    assert refused.status_code == 400 and "K" in refused.json()["errorDetails"], refused.text
    assert (await node.admin.get(f"/apis/{api['id']}")).status_code == 200
    assert (await node.admin.delete(f"/apis/{api['id']}", params={"forceDelete": "true"})).status_code == 204
    package = (await node.admin.get(f"/packages/{package_id}")).json()["packageResponse"]
    assert package["apiIds"] == [other["id"]]  # no dangling id: the package can be saved as read
    r = await node.admin.put(f"/packages/{package_id}", json={"name": "K", "apiIds": package["apiIds"]})
    assert r.status_code == 200, r.text


@pytest.fixture
def raw_server() -> Iterator[Any]:
    """``serve(reply)``: a loopback port answering each connection with the bytes ``reply``, then closing."""
    sockets: list[socket.socket] = []

    def serve(reply: bytes) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def run() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = listener.accept()
                    with conn:
                        conn.recv(65536)
                        conn.sendall(reply)

        threading.Thread(target=run, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/spec.json"

    yield serve
    for listener in sockets:
        listener.close()


_TWO_PATHS = yaml.safe_dump({**SWAGGER, "paths": {"/a": SWAGGER["paths"]["/pets"], "/b": SWAGGER["paths"]["/pets"]}})
_HALF = _TWO_PATHS[: _TWO_PATHS.index("  /b:")].encode()  # still a valid document, with /a only


@pytest.mark.parametrize(("reply", "named"), [
    (b"-ERR unknown command\r\n", "not a valid HTTP response"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not a valid HTTP response"),
    # the connection closes half-way through: imported, the API would have lost /b
    (f"HTTP/1.1 200 OK\r\nContent-Length: {len(_TWO_PATHS)}\r\n\r\n".encode() + _HALF, "closed after"),
])
async def test_import_from_a_broken_url_is_400(node: Node, raw_server: Any, reply: bytes, named: str) -> None:
    url = raw_server(reply)
    r = await node.admin.post("/apis", json={"type": "swagger", "url": url})
    assert r.status_code == 400 and named in r.json()["errorDetails"] and url in r.json()["errorDetails"], r.text
    assert (await node.admin.get("/apis")).json() == {"apiResponse": []}


@pytest.mark.parametrize(("raw", "named"), [
    # stored, these broke the write with a 500, or came back changed (NaN as null)
    (b'{"openapi": "3.0.3", "info": {"title": "a\\ud800", "version": "1"}, "paths": {}}', "info.title"),
    (b'{"openapi": "3.0.3", "info": {"title": "T", "version": "1", "x-n": 123456789012345678901234567890},'
     b' "paths": {}}', "info.x-n"),
    (b'{"openapi": "3.0.3", "info": {"title": "T", "version": NaN}, "paths": {}}', "info.version"),
])
async def test_documents_json_cannot_store_are_400(node: Node, raw: bytes, named: str) -> None:
    r = await _create_multipart(node, raw)
    assert r.status_code == 400 and named in r.json()["errorDetails"], r.text
    assert (await node.admin.get("/apis")).json() == {"apiResponse": []}


async def test_a_title_unusable_as_name_says_so(node: Node) -> None:
    doc = json.dumps({**SWAGGER, "info": {"title": "Pets/Store", "version": "1"}}).encode()
    r = await _create_multipart(node, doc)
    assert r.status_code == 400 and "info.title" in r.json()["errorDetails"], r.text
    assert "'apiName'" in r.json()["errorDetails"]
    assert (await _create_multipart(node, doc, apiName="PetStore")).status_code == 200


async def test_reimport_with_relative_servers_keeps_the_native_endpoint(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    r = await node.admin.put(f"/apis/{api['id']}", json={"type": "openapi", "apiDefinition": spec_for("/v1")})
    assert r.status_code == 200, r.text
    # the default routing still goes to the upstream, and the API says so
    assert [e["uri"] for e in r.json()["apiResponse"]["api"]["nativeEndpoint"]] == [upstream.url]
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo")).json()["path"] == "/echo"


async def test_system_version_must_be_a_number(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    for sent in ("abc", True, "²", [1], -1):
        r = await node.admin.put(f"/apis/{api['id']}", json={"apiDescription": "x", "systemVersion": sent})
        assert r.status_code == 400 and "'systemVersion'" in r.json()["errorDetails"], (sent, r.text)
    assert (await node.admin.put(f"/apis/{api['id']}", json={"systemVersion": 5})).status_code == 409
    assert (await node.admin.put(f"/apis/{api['id']}", json={"systemVersion": "1"})).status_code == 200


@pytest.mark.parametrize("server", ["http:///v1", "http://:8080/v1", "https://host:99999/v1", "http://host:x/v1"])
async def test_a_server_without_a_usable_host_is_no_native_endpoint(node: Node, server: str) -> None:
    r = await node.admin.post("/apis", json={"apiDefinition": {**spec_for(server), "info": {"title": "H",
                                                                                         "version": "1"}}})
    assert r.status_code == 200, r.text
    api = r.json()["apiResponse"]["api"]
    # before, it became the native endpoint and the default routing got a URL every snapshot build refused
    assert api["nativeEndpoint"] == []
    policy = (await node.admin.get(f"/policies/{api['policies'][0]}")).json()["policy"]
    assert [s["stageKey"] for s in policy["policyEnforcements"]] == ["transport"]
