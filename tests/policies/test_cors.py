"""cors end to end: headers on answers, preflights answered at the gateway before IAM."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.test_runtime import API_KEY_RULE, add_action
from tests.policies.spec_support import post_action
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


def cors(origins: list[str], credentials: bool = False, methods: list[str] | None = None,
         headers: list[str] | None = None, max_age: str | None = "600") -> list[dict[str, Any]]:
    attrs: list[dict[str, Any]] = [
        {"templateKey": "allowedOrigins", "values": origins},
        {"templateKey": "exposeHeaders", "values": ["X-Total"]},
        {"templateKey": "allowCredentials", "values": [str(credentials).lower()]},
    ]
    if methods is not None:
        attrs.append({"templateKey": "allowMethods", "values": methods})
    if headers is not None:
        attrs.append({"templateKey": "allowHeaders", "values": headers})
    if max_age is not None:
        attrs.append({"templateKey": "maxAge", "values": [max_age]})
    return [{"templateKey": "corsAttributes", "parameters": attrs}]


def preflight(origin: str, method: str = "POST", headers: str | None = None) -> dict[str, str]:
    out = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        out["Access-Control-Request-Headers"] = headers
    return out


async def test_headers_on_answers_and_preflight_before_iam(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", API_KEY_RULE)  # calls need an API key...
    await add_action(node, api, "cors", "responseProcessing",
                     cors(["https://*.example.com", "10.0.0.7"], credentials=True, methods=["GET", "POST"],
                          headers=["X-Api-Key", "Content-Type"]))
    # ...but a preflight carries none, and is answered by the gateway (no OPTIONS operation exists).
    r = await node.gw.options("/Echo/1.0/echo", headers=preflight("https://app.example.com", "POST",
                                                                  "x-api-key, content-type"))
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["access-control-allow-methods"] == "GET, POST"
    assert r.headers["access-control-allow-headers"] == "x-api-key, content-type"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-max-age"] == "600"
    r = await node.gw.options("/Echo/1.0/echo", headers=preflight("http://10.0.0.7:3000", "GET"))
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://10.0.0.7:3000"
    # Refused preflights: origin, method, header; no CORS headers.
    for headers in (preflight("https://evil.com"), preflight("https://a.example.com", "DELETE"),
                    preflight("https://a.example.com", "GET", "x-other")):
        r = await node.gw.options("/Echo/1.0/echo", headers=headers)
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers, r.text
    # A plain OPTIONS (not a preflight) is still 405: the API defines no OPTIONS operation.
    assert (await node.gw.options("/Echo/1.0/echo")).status_code == 405


async def test_actual_call_gets_origin_headers(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "cors", "responseProcessing", cors(["*"]))
    r = await node.gw.get("/Echo/1.0/echo", headers={"Origin": "https://any.org"})
    assert r.status_code == 200 and r.json()["method"] == "GET"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == "X-Total"
    assert "access-control-allow-credentials" not in r.headers
    r = await node.gw.get("/Echo/1.0/echo")  # no Origin: nothing added
    assert "access-control-allow-origin" not in r.headers
    # Without allowMethods, a preflight may ask for the resource's own methods.
    r = await node.gw.options("/Echo/1.0/echo", headers=preflight("https://x.org", "PUT"))
    assert r.status_code == 200 and r.headers["access-control-allow-methods"] == "GET, POST, PUT"


async def test_disallowed_origin_gets_no_headers(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "cors", "responseProcessing", cors(["https://good.org"], credentials=True))
    r = await node.gw.get("/Echo/1.0/echo", headers={"Origin": "https://bad.org"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = await node.gw.get("/Echo/1.0/echo", headers={"Origin": "https://good.org"})
    assert r.headers["access-control-allow-origin"] == "https://good.org" and r.headers["vary"] == "Origin"


async def test_api_without_cors_answers_options_as_before(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    r = await node.gw.options("/Echo/1.0/echo", headers=preflight("https://x.org"))
    assert r.status_code == 405


@pytest.mark.parametrize(("params", "field"), [
    ([], "corsAttributes"),
    (cors([]), "allowedOrigins"),
    (cors(["https://a.org"], max_age="-3"), "maxAge"),
    (cors(["https://a.org"], max_age="soon"), "maxAge"),
    (cors(["https://a.org"], methods=["G ET"]), "allowMethods"),
    (cors(["https://a.org"], headers=["bad header"]), "allowHeaders"),
    (cors(["a b"]), "allowedOrigins"),
])
async def test_bad_config_is_400(sqlite_node: Node, params: list[Any], field: str) -> None:
    r = await post_action(sqlite_node, "cors", params)
    assert r.status_code == 400 and field in r.json()["errorDetails"], r.text
