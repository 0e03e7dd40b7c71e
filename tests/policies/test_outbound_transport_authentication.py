"""outboundTransportAuthentication: new basic/bearer/API key credentials, delegation, removal."""

from __future__ import annotations

import base64
from typing import Any

from tests.gateway.test_runtime import add_action
from tests.policies.routing_support import assert_rejected, group, values
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

KEY = "outboundTransportAuthentication"


def _sec(*params: Any) -> list[dict[str, Any]]:
    return [group("transportSecurity", *params)]


async def _headers(node: Node, **kw: Any) -> tuple[int, dict[str, str]]:
    r = await node.gw.get("/Echo/1.0/echo", **kw)
    return r.status_code, (r.json().get("headers", {}) if r.status_code == 200 else r.json())


async def test_new_basic_credentials_with_a_variable(node: Node, upstream: Upstream) -> None:
    await node.admin.post("/alias", json={"name": "backendPassword", "type": "simple", "value": "s3cret"})
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, KEY, "routing", _sec(values(authType="HTTP_BASIC", authMode="NEW"), group(
        "httpAuthCredentials", values(userName="svc", password="${backendPassword}"))))
    status, headers = await _headers(node, headers={"authorization": "Basic Y2xpZW50OnB3"})
    assert status == 200 and headers["authorization"] == "Basic " + base64.b64encode(b"svc:s3cret").decode()


async def test_bearer_and_api_key(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, KEY, "routing", _sec(values(authType="OAUTH2", authMode="NEW", oauth2Token="t0k")))
    assert (await _headers(node))[1]["authorization"] == "Bearer t0k"
    await add_action(node, api, KEY, "routing", _sec(values(authType="API_KEY", apiKeyHeader="X-Api-Key",
                                                            apiKey="k-1")))
    assert (await _headers(node))[1]["x-api-key"] == "k-1"


async def test_delegating_incoming_credentials(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, KEY, "routing", _sec(values(authType="HTTP_BASIC",
                                                            authMode="INCOMING_HTTP_BASIC_AUTH")))
    status, headers = await _headers(node, auth=("alice", "pw"))
    assert status == 200 and headers["authorization"] == "Basic " + base64.b64encode(b"alice:pw").decode()
    status, body = await _headers(node)
    assert status == 401 and "credentials" in body["Exception"]
    assert (await node.gw.get("/Echo/1.0/echo")).headers["www-authenticate"].startswith("Basic")
    await add_action(node, api, KEY, "routing", _sec(values(authType="JWT", authMode="INCOMING_JWT")))
    status, _ = await _headers(node, auth=("alice", "pw"))
    assert status == 401
    status, headers = await _headers(node, headers={"authorization": "Bearer abc"})
    assert status == 200 and headers["authorization"] == "Bearer abc"


async def test_remove_incoming_and_transparent(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, KEY, "routing", _sec(values(authType="REMOVE_INCOMING_HTTP_HEADERS", authMode="NEW")))
    assert "authorization" not in (await _headers(node, auth=("a", "b")))[1]
    await add_action(node, api, KEY, "routing", _sec(values(authType="HTTP_BASIC", authMode="TRANSPARENT")))
    assert (await _headers(node, headers={"authorization": "Custom x"}))[1]["authorization"] == "Custom x"


async def test_config_validation(node: Node) -> None:
    await assert_rejected(node, KEY, [], "transportSecurity")
    await assert_rejected(node, KEY, _sec(values(authType="MAGIC", authMode="NEW")), "authType")
    await assert_rejected(node, KEY, _sec(values(authType="HTTP_BASIC", authMode="NEW")), "httpAuthCredentials")
    await assert_rejected(node, KEY, _sec(values(authType="OAUTH2", authMode="NEW")), "oauth2Token")
    await assert_rejected(node, KEY, _sec(values(authType="API_KEY", apiKey="x")), "apiKeyHeader")
    await assert_rejected(node, KEY, _sec(values(authType="OAUTH2", authMode="INCOMING_HTTP_BASIC_AUTH")),
                          "authMode")
    await assert_rejected(node, KEY, _sec(values(authType="NTLM", authMode="NEW")), "not supported yet")
    await assert_rejected(node, KEY, _sec(values(authType="HTTP_BASIC", authMode="NEW"), group(
        "httpAuthCredentials", values(password="x"))), "userName")
