"""The gateway end to end: a real upstream, Portico on a real socket, both store backends."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx

from portico.policies.straight_through_routing import StraightThroughRouting
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

API_KEY_RULE = [
    {"templateKey": "logicalConnector", "values": ["OR"]},
    {"templateKey": "allowAnonymous", "values": ["false"]},
    {"templateKey": "IdentificationRule", "parameters": [
        {"templateKey": "applicationLookup", "values": ["strict"]},
        {"templateKey": "identificationType", "values": ["apiKey"]},
    ]},
]


def rules(*kinds: str, connector: str = "OR", lookup: str = "strict", anonymous: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"templateKey": "logicalConnector", "values": [connector]},
        {"templateKey": "allowAnonymous", "values": [str(anonymous).lower()]},
    ]
    for kind in kinds:
        out.append({"templateKey": "IdentificationRule", "parameters": [
            {"templateKey": "applicationLookup", "values": [lookup]},
            {"templateKey": "identificationType", "values": [kind]},
        ]})
    return out


async def add_action(node: Node, api: dict[str, Any], template: str, stage: str, parameters: list[Any]) -> str:
    r = await node.admin.post("/policyActions", json={"policyAction": {
        "names": [{"value": template, "locale": "English"}], "templateKey": template, "parameters": parameters}})
    assert r.status_code == 201, r.text
    action_id: str = r.json()["policyAction"]["id"]
    pid = api["policies"][0]
    policy = (await node.admin.get(f"/policies/{pid}")).json()["policy"]
    enforcements = [s for s in policy["policyEnforcements"] if s["stageKey"] != stage]
    existing = [s for s in policy["policyEnforcements"] if s["stageKey"] == stage]
    others = existing[0]["enforcements"] if existing and stage != "IAM" else []
    if stage == "routing":
        others = []
    enforcements.append({"stageKey": stage, "enforcements": [
        *others, {"enforcementObjectId": action_id, "order": str(len(others))}]})
    r = await node.admin.put(f"/policies/{pid}", json={"policy": {"policyEnforcements": enforcements}})
    assert r.status_code == 200, r.text
    await node.reload()
    return action_id


async def new_app(node: Node, api_ids: list[str], **fields: Any) -> dict[str, Any]:
    r = await node.admin.post("/applications", json={"name": fields.pop("name", "app"), "apiIDs": api_ids, **fields})
    assert r.status_code == 200, r.text
    await node.reload()
    app: dict[str, Any] = r.json()
    return app


def key_of(app: dict[str, Any]) -> str:
    key: str = app["accessTokens"]["apiAccessKey_credentials"]["apiAccessKey"]
    return key


async def test_proxies_method_path_query_headers_and_body(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    r = await node.gw.post("/Echo/1.0/echo?a=1&b=x%20y", content=b"hello", headers={"X-Custom": "v",
                                                                                 "Connection": "keep-alive"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["method"] == "POST" and seen["path"] == "/echo?a=1&b=x%20y"
    assert seen["body"] == "hello" and seen["headers"]["x-custom"] == "v"
    assert seen["headers"]["host"] == f"127.0.0.1:{upstream.port}"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-forwarded-host"].startswith("127.0.0.1:")
    templated = await node.gw.delete("/Echo/1.0/echo/42")
    assert templated.json()["path"] == "/echo/42" and templated.json()["method"] == "DELETE"


async def test_api_name_is_url_decoded_and_version_defaults(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url, "Echo Service", "1.0"))
    v2 = spec_for(upstream.url + "/echo", "Echo Service", "2.0")
    await node.create_api(v2)
    assert (await node.gw.get("/Echo%20Service/1.0/echo")).json()["path"] == "/echo"
    # No known version in the URL: the latest version serves, with the whole rest as resource path.
    assert (await node.gw.get("/Echo%20Service/echo")).json()["path"] == "/echo/echo"
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"pg.default.enable.oldVersion": "true"}}})
    await node.reload()
    assert (await node.gw.get("/Echo%20Service/echo")).json()["path"] == "/echo"


async def test_not_found_not_active_and_method_not_allowed(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    unknown = await node.gw.get("/Nope/1.0/echo")
    assert unknown.status_code == 404 and "Nope" in unknown.json()["Exception"]
    inactive = await node.gw.get("/Echo/1.0/echo")
    assert inactive.status_code == 404 and "not active" in inactive.json()["Exception"]
    await node.admin.put(f"/apis/{api['id']}/activate")
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/unknown")).status_code == 404
    wrong = await node.gw.patch("/Echo/1.0/echo")
    assert wrong.status_code == 405 and "PATCH" in wrong.json()["Exception"]


async def test_strict_resource_matching_off_serves_best_prefix(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    assert (await node.gw.get("/Echo/1.0/echo/1/extra")).status_code == 404
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"strictResourceMatching": "false"}}})
    await node.reload()
    r = await node.gw.get("/Echo/1.0/echo/1/extra")
    assert r.status_code == 200 and r.json()["path"] == "/echo/1/extra"


async def test_a_disabled_resource_is_not_served_by_a_shorter_one(node: Node, upstream: Upstream) -> None:
    # /echo/{id} switched off: with strict matching off, /echo must not answer its paths instead
    api = await node.create_api(spec_for(upstream.url))
    body = (await node.admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]
    body["apiDefinition"]["paths"]["/echo/{id}"]["enabled"] = False
    assert (await node.admin.put(f"/apis/{api['id']}", json=body)).status_code == 200
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"strictResourceMatching": "false"}}})
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo/7")).status_code == 404
    assert (await node.gw.get("/Echo/1.0/echo/7/extra")).status_code == 404
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
    assert (await node.gw.get("/Echo/1.0/bytes/3/extra")).status_code == 200  # other resources still fall back


async def test_a_resource_with_every_method_disabled_is_not_found(node: Node, upstream: Upstream) -> None:
    # Every method of /echo/{id} switched off exposes nothing: the resource answers as a disabled
    # one (404, also with strict matching off), while a resource keeping a method answers 405.
    api = await node.create_api(spec_for(upstream.url))
    body = (await node.admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]
    paths = body["apiDefinition"]["paths"]
    paths["/echo/{id}"]["get"]["enabled"] = paths["/echo/{id}"]["delete"]["enabled"] = False
    paths["/echo"]["post"]["enabled"] = False
    assert (await node.admin.put(f"/apis/{api['id']}", json=body)).status_code == 200
    await node.reload()
    for method in ("GET", "DELETE", "PATCH"):
        gone = await node.gw.request(method, "/Echo/1.0/echo/7")
        assert gone.status_code == 404, (method, gone.text)
        assert "No resource matches /echo/7" in gone.json()["Exception"]  # the error template
    assert (await node.gw.post("/Echo/1.0/echo")).status_code == 405
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"strictResourceMatching": "false"}}})
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo/7")).status_code == 404
    assert (await node.gw.get("/Echo/1.0/echo/7/extra")).status_code == 404  # /echo does not step in
    assert (await node.gw.post("/Echo/1.0/echo")).status_code == 405
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200


async def test_api_key_identification(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    other = await node.create_api(spec_for(upstream.url, "Other"))
    await add_action(node, api, "evaluatePolicy", "IAM", API_KEY_RULE)
    registered = await new_app(node, [api["id"]], name="registered")
    stranger = await new_app(node, [other["id"]], name="stranger")
    missing = await node.gw.get("/Echo/1.0/echo")
    assert missing.status_code == 403
    assert "Unable to identify the application" in missing.json()["Exception"]
    ok = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(registered)})
    assert ok.status_code == 200
    assert (await node.gw.get("/Echo/1.0/echo", headers={"X-Gateway-APIKey": key_of(registered)})).status_code == 200
    assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": "bogus"})).status_code == 403
    strict = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(stranger)})
    assert strict.status_code == 403
    # A custom header name from the settings.
    settings = {"preferredSettings": {"extendedKeys": {"apiKeyHeader": "X-Key"}}}
    await node.admin.put("/configurations/settings", json=settings)
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo", headers={"x-key": key_of(registered)})).status_code == 200


async def test_identification_that_never_waits_is_a_compiled_step(node: Node, upstream: Upstream) -> None:
    # API-key (and IP, certificate) rules answer at once: the phase calls the compiled judge itself;
    # a rule that may wait (HTTP basic) keeps the policy's run.
    keyed = await node.create_api(spec_for(upstream.url))
    basic = await node.create_api(spec_for(upstream.url, "Basic"))
    await add_action(node, keyed, "evaluatePolicy", "IAM", API_KEY_RULE)
    await add_action(node, basic, "evaluatePolicy", "IAM", rules("httpBasicAuth"))
    assert node.portico.gateway is not None
    apis = node.portico.gateway.snapshot.apis_by_id
    keyed_plan, basic_plan = apis[keyed["id"]].plan, apis[basic["id"]].plan
    keyed_policy = next(h for h in keyed_plan.request if h.template_key == "evaluatePolicy")
    basic_policy = next(h for h in basic_plan.request if h.template_key == "evaluatePolicy")
    assert (keyed_policy.request_step(), False) in keyed_plan.request_steps
    assert keyed_policy.request_step() == keyed_policy._judge.run_sync  # type: ignore[attr-defined]
    assert basic_policy.request_step() == basic_policy.run
    app = await new_app(node, [keyed["id"]])
    assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(app)})).status_code == 200
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 403


async def test_global_lookup_suspension_regeneration_and_expiry(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey", lookup="global"))
    app = await new_app(node, [], name="unregistered")
    headers = {"x-gateway-apikey": key_of(app)}
    assert (await node.gw.get("/Echo/1.0/echo", headers=headers)).status_code == 200
    assert (await node.admin.patch(f"/applications/{app['id']}", json={"isSuspended": True})).status_code == 200
    await node.reload()
    suspended = await node.gw.get("/Echo/1.0/echo", headers=headers)
    assert suspended.status_code == 403 and "suspended" in suspended.json()["Exception"]
    await node.admin.patch(f"/applications/{app['id']}", json={"isSuspended": "false"})
    regenerated = await node.admin.post(f"/applications/{app['id']}/accessTokens",
                                        json={"type": "apiAccessKeyCredentials"})
    new_key = regenerated.json()["apiAccessKey_credentials"]["apiAccessKey"]
    assert new_key != key_of(app)
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo", headers=headers)).status_code == 403
    assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": new_key})).status_code == 200
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"apiKeyExpirationPeriod": "1s"}}})
    short = await new_app(node, [], name="short-lived")
    assert short["accessTokens"]["apiAccessKey_credentials"]["expirationDate"] is not None
    await asyncio.sleep(1.1)
    expired = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(short)})
    assert expired.status_code == 403 and "expired" in expired.json()["Exception"]


async def test_anonymous_allowed(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey", anonymous=True))
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200


async def test_ip_range_and_basic_auth_with_and_or(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("ipAddressRange", "httpBasicAuth", connector="AND"))
    app = await new_app(node, [api["id"]], name="both", identifiers=[
        {"key": "ipAddressRange", "name": "loopback", "value": ["127.0.0.1-127.0.0.5"]},
        {"key": "httpBasicAuth", "name": "user", "value": ["Administrator"]},
    ])
    assert app["identifiers"][0]["id"]
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 403  # IP alone is not enough with AND
    ok = await node.gw.get("/Echo/1.0/echo", auth=("Administrator", "test-secret"))
    assert ok.status_code == 200
    bad = await node.gw.get("/Echo/1.0/echo", auth=("Administrator", "wrong"))
    assert bad.status_code == 401 and "cannot be authenticated" in bad.json()["Exception"]
    # OR: the IP range alone identifies the application.
    await add_action(node, api, "evaluatePolicy", "IAM", rules("ipAddressRange", "httpBasicAuth", connector="OR"))
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200


async def test_x_forwarded_for_is_honoured_only_when_configured(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("ipAddressRange"))
    await new_app(node, [api["id"]], identifiers=[{"key": "ipAddressRange", "value": ["10.1.0.0/16"]}])
    spoofed = {"x-forwarded-for": "10.1.2.3"}
    assert (await node.gw.get("/Echo/1.0/echo", headers=spoofed)).status_code == 403
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "wattKeys": {"watt.server.enterprisegateway.ignoreXForwardedForHeader": "false"}}})
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo", headers=spoofed)).status_code == 200


async def test_hostname_identification(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("hostNameAddress"))
    await new_app(node, [api["id"]], identifiers=[{"key": "hostNameAddress", "value": ["127.0.0.1"]}])
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200


async def test_entry_protocol_https_only_rejects_http(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "entryProtocolPolicy", "transport", [{"templateKey": "protocol", "values": ["https"]}])
    r = await node.gw.get("/Echo/1.0/echo")
    assert r.status_code == 403 and "https" in r.json()["Exception"]


async def test_entry_protocol_allowing_both_protocols_is_left_out_of_the_request_phase(
        node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))

    def request_keys() -> list[str]:
        assert node.portico.gateway is not None
        compiled = node.portico.gateway.snapshot.apis_by_id[api["id"]]
        return [h.template_key for h in compiled.plan.request]

    assert "entryProtocolPolicy" not in request_keys()  # the default policy: http and https
    await add_action(node, api, "entryProtocolPolicy", "transport", [{"templateKey": "protocol", "values": ["https"]}])
    assert "entryProtocolPolicy" in request_keys()


async def test_the_request_phase_calls_each_handlers_step(node: Node, upstream: Upstream) -> None:
    # Straight-through routing's step is its endpoint's compiled one (no interpreted frame per call);
    # other handlers' step is their run, flagged when it needs the request body buffered first.
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "entryProtocolPolicy", "transport", [{"templateKey": "protocol", "values": ["https"]}])
    assert node.portico.gateway is not None
    plan = node.portico.gateway.snapshot.apis_by_id[api["id"]].plan
    keys = [h.template_key for h in plan.request]
    assert keys == ["entryProtocolPolicy", "straightThroughRouting"]
    assert plan.request_steps == tuple((h.request_step(), h.needs_request_body) for h in plan.request)
    routing = cast(StraightThroughRouting, plan.request[1])  # the keys above: it is the routing handler
    assert plan.request_steps[1][0] == routing._endpoint.step
    assert plan.request_steps[0][0] == plan.request[0].run


async def test_routing_without_resource_path_and_forward_query_params(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "straightThroughRouting", "routing", [
        {"templateKey": "endpointUri", "values": [f"{upstream.url}/echo/fixed"]},
        {"templateKey": "method", "values": ["PUT"]}])
    r = await node.gw.get("/Echo/1.0/echo?q=1")
    assert r.json()["path"] == "/echo/fixed" and r.json()["method"] == "PUT"
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"forwardQueryParams": "true"}}})
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo?q=1")).json()["path"] == "/echo/fixed?q=1"


async def test_native_faults_replaced_or_passed_through(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    replaced = await node.gw.get("/Echo/1.0/status/500")
    assert replaced.status_code == 500 and "Exception" in replaced.json()
    await node.admin.put("/configurations/errorProcessing", json={"sendNativeProviderFault": True,
                                                                  "defaultErrorMessage": "Oops: $ERROR_MESSAGE"})
    await node.reload()
    passed = await node.gw.get("/Echo/1.0/status/503")
    assert passed.status_code == 503 and passed.json() == {"status": 503}
    custom = await node.gw.get("/Echo/1.0/missing")
    assert custom.json()["Exception"].startswith("Oops: No resource matches")


async def test_upstream_refusing_connections(node: Node, upstream: Upstream) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    await node.create_api(spec_for(f"http://127.0.0.1:{dead_port}"))
    r = await node.gw.get("/Echo/1.0/echo")
    assert r.status_code == 503 and "connect" in r.json()["Exception"].lower()


async def test_read_timeout_gives_408_or_504(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"pg.endpoint.readTimeout": "0.3"}}})
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/slow/2")).status_code == 408
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"return408ForConnectionTimeout": "false"}}})
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/slow/2")).status_code == 504


async def test_routing_action_timeout_takes_precedence(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "straightThroughRouting", "routing", [
        {"templateKey": "endpointUri", "values": [f"{upstream.url}/${{sys:resource_path}}"]},
        {"templateKey": "readTimeout", "values": ["0.3"]}])
    assert (await node.gw.get("/Echo/1.0/slow/2")).status_code == 408


async def test_upstream_closing_mid_body_cuts_the_client(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    try:
        r = await node.gw.get("/Echo/1.0/cut")
    except httpx.HTTPError:
        pass  # the connection was cut: the client must not see a complete response
    else:
        assert len(r.content) < 100000
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200


async def test_large_response_streams(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    size = 0
    async with node.gw.stream("GET", "/Echo/1.0/bytes/20000000") as r:
        async for chunk in r.aiter_bytes():
            size += len(chunk)
    assert size == 20_000_000


async def test_head_request(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    r = await node.gw.head("/Echo/1.0/echo")
    assert r.status_code == 200 and r.content == b""
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200


async def test_100mb_upload_streams_with_flat_memory(sqlite_node: Node, upstream: Upstream) -> None:
    import tracemalloc

    node = sqlite_node
    await node.create_api(spec_for(upstream.url))
    size = 100 * 1024 * 1024
    chunk = b"z" * (1024 * 1024)

    async def body() -> Any:
        for _ in range(size // len(chunk)):
            yield chunk

    tracemalloc.start()
    try:
        r = await node.gw.post("/Echo/1.0/sink", content=body(), headers={"content-length": str(size)})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200 and r.json() == {"received": size}
    # Client, gateway and upstream share this process: the peak still stays far below the payload.
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


async def test_request_values_in_a_routing_uri_are_percent_encoded(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "straightThroughRouting", "routing", [
        {"templateKey": "endpointUri", "values": [f"{upstream.url}/echo/${{request.query.p}}"]}])
    euro = await node.gw.get("/Echo/1.0/echo", params={"p": "€"})
    assert euro.status_code == 200 and euro.json()["path"] == "/echo/%E2%82%AC"
    assert euro.json()["headers"]["host"] == f"127.0.0.1:{upstream.port}"  # a rendered endpoint's Host
    sneaky = await node.gw.get("/Echo/1.0/echo", params={"p": "a?admin=1#x"})
    assert sneaky.json()["path"] == "/echo/a%3Fadmin%3D1%23x"
    spaced = await node.gw.get("/Echo/1.0/echo", params={"p": "a b/../c"})
    assert spaced.json()["path"] == "/echo/a%20b%2F..%2Fc"


async def _read_head_and_hang_up(port: int, path: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    await reader.read(1000)  # some of the body: the gateway is relaying it
    writer.close()
    await writer.wait_closed()


async def test_client_hanging_up_mid_body_closes_the_native_connection(sqlite_node: Node, upstream: Upstream) -> None:
    """A client gone while a long native body streams: the native connection is closed, not left
    half-read (paused, outside the pool) until the native service gives up on it."""
    node = sqlite_node
    await node.create_api(spec_for(upstream.url))
    pool = node.portico.pool
    for _ in range(3):
        await _read_head_and_hang_up(node.portico.port, "/gateway/Echo/1.0/bytes/200000000")
    for _ in range(100):  # the gateway notices the disconnect on its next write
        if not pool._connections:
            break
        await asyncio.sleep(0.1)
    assert not pool._connections
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
