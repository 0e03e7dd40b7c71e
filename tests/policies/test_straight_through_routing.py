"""straightThroughRouting with aliases and variables in the endpoint URI; alias timeouts first."""

from __future__ import annotations

from tests.gateway.test_runtime import add_action
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def test_endpoint_alias_in_uri_and_its_timeout_wins(node: Node, upstream: Upstream) -> None:
    r = await node.admin.post("/alias", json={"name": "Echo Backend", "type": "endpoint",
                                              "endPointURI": upstream.url + "/", "readTimeout": 0})
    alias_id = r.json()["alias"]["id"]
    api = await node.create_api(spec_for("http://127.0.0.1:1"))
    await add_action(node, api, "straightThroughRouting", "routing", [
        {"templateKey": "endpointUri", "values": ["${Echo Backend}/${sys:resource_path}"]},
        {"templateKey": "readTimeout", "values": ["5"]}])
    r = await node.gw.get("/Echo/1.0/echo/7?q=1")
    assert r.status_code == 200 and r.json()["path"] == "/echo/7?q=1"
    assert (await node.gw.get("/Echo/1.0/slow/0.6")).status_code == 200  # the action's 5 s applies
    # The alias's non-zero read timeout takes precedence over the action's.
    r = await node.admin.put(f"/alias/{alias_id}", json={"name": "Echo Backend", "type": "endpoint",
                                                         "endPointURI": upstream.url, "readTimeout": 1})
    assert r.status_code == 200
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/slow/2")).status_code == 408


async def test_variables_and_simple_alias_in_uri(node: Node, upstream: Upstream) -> None:
    await node.admin.post("/alias", json={"name": "prefix", "type": "simple", "value": "echo"})
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "straightThroughRouting", "routing", [
        {"templateKey": "endpointUri", "values": [f"{upstream.url}/${{prefix}}/${{request.headers.x-tenant}}"]}])
    r = await node.gw.get("/Echo/1.0/echo", headers={"x-tenant": "acme"})
    assert r.status_code == 200 and r.json()["path"] == "/echo/acme"


async def test_missing_alias_is_a_clear_error(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "straightThroughRouting", "routing", [
        {"templateKey": "endpointUri", "values": ["${NoSuchAlias}/${sys:resource_path}"]}])
    r = await node.gw.get("/Echo/1.0/echo")
    assert r.status_code == 500 and "NoSuchAlias" in r.json()["Exception"]


async def test_bad_endpoint_config_is_400(node: Node, upstream: Upstream) -> None:
    for params, field in [
        ([{"templateKey": "endpointUri", "values": ["ftp://x/${sys:resource_path}"]}], "endpointUri"),
        ([{"templateKey": "endpointUri", "values": ["http://x:99999/"]}], "endpointUri"),
        ([{"templateKey": "endpointUri", "values": ["http://x/"]}, {"templateKey": "method", "values": ["FLY"]}],
         "method"),
        ([{"templateKey": "endpointUri", "values": ["http://x/"]},
          {"templateKey": "readTimeout", "values": ["-1"]}], "readTimeout"),
        ([], "endpointUri"),
    ]:
        r = await node.admin.post("/policyActions", json={"policyAction": {
            "names": [{"value": "r", "locale": "English"}], "templateKey": "straightThroughRouting",
            "parameters": params}})
        assert r.status_code == 400 and field in r.json()["errorDetails"], r.text
