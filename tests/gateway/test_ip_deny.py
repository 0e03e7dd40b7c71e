"""Global IP access on failed authentication (issue 5): N failures in T seconds from one client IP
block it for a while or put it on the deny list; X-Forwarded-For honoured per setting; the denied
list read and edited through /configurations/denyByIPForFailedAuthConfig; bad input refused."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.gateway.test_runtime import add_action, key_of, new_app, rules
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

PATH = "/configurations/denyByIPForFailedAuthConfig"


async def configure(node: Node, **fields: Any) -> dict[str, Any]:
    r = await node.admin.put(PATH, json=fields)
    assert r.status_code == 200, r.text
    await node.reload()
    body: dict[str, Any] = r.json()
    return body


async def test_block_for_a_while_then_expiry(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey"))
    app = await new_app(node, [api["id"]])
    good = {"x-gateway-apikey": key_of(app)}
    defaults = (await node.admin.get(PATH)).json()
    assert defaults["isEnabled"] == "false" and defaults["deniedIPList"] == []
    # off: failures are not counted
    for _ in range(5):
        assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": "bad"})).status_code == 403
    assert (await node.gw.get("/Echo/1.0/echo", headers=good)).status_code == 200
    await configure(node, isEnabled="true", maximumFailedAuthRequests="3", maximumFailedAuthRequestsDuration="60",
                    whenLimitExceeds="BLOCK", blockIntervalInSeconds="2")
    for _ in range(3):
        assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": "bad"})).status_code == 403
    blocked = await node.gw.get("/Echo/1.0/echo", headers=good)
    assert blocked.status_code == 403 and "blocked" in blocked.json()["Exception"]
    await asyncio.sleep(2.2)
    assert (await node.gw.get("/Echo/1.0/echo", headers=good)).status_code == 200
    assert (await node.admin.get(PATH)).json()["deniedIPList"] == []  # a block is not a denial


async def test_deny_list_with_x_forwarded_for(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey"))
    app = await new_app(node, [api["id"]])
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "wattKeys": {"watt.server.enterprisegateway.ignoreXForwardedForHeader": "false"}}})
    await configure(node, isEnabled=True, maximumFailedAuthRequests=2, maximumFailedAuthRequestsDuration=60,
                    whenLimitExceeds="DENY")
    bad = {"x-gateway-apikey": "bad", "x-forwarded-for": "10.9.8.7"}
    for _ in range(2):
        assert (await node.gw.get("/Echo/1.0/echo", headers=bad)).status_code == 403
    # the forwarded client is denied; another client behind the same balancer is not
    denied = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(app),
                                                          "x-forwarded-for": "10.9.8.7"})
    assert denied.status_code == 403 and "denied" in denied.json()["Exception"]
    ok = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(app), "x-forwarded-for": "10.1.1.1"})
    assert ok.status_code == 200
    for _ in range(50):  # written to the settings document in the background
        listed = (await node.admin.get(PATH)).json()["deniedIPList"]
        if listed:
            break
        await asyncio.sleep(0.05)
    assert listed == ["10.9.8.7"]
    # removing it from the list lets it in again
    await configure(node, deniedIPList=[])
    again = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(app),
                                                         "x-forwarded-for": "10.9.8.7"})
    assert again.status_code == 200
    # an address added by hand is denied
    await configure(node, deniedIPList=["10.1.1.1"])
    assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(app),
                                                         "x-forwarded-for": "10.1.1.1"})).status_code == 403


async def test_bad_input_leaves_the_setting_untouched(node: Node) -> None:
    before = (await node.admin.get(PATH)).json()
    for body, words in [
        ({"isEnabled": "maybe"}, "isEnabled"),
        ({"maximumFailedAuthRequests": "0"}, "maximumFailedAuthRequests"),
        ({"maximumFailedAuthRequestsDuration": "x"}, "maximumFailedAuthRequestsDuration"),
        ({"whenLimitExceeds": "EXPLODE"}, "whenLimitExceeds"),
        ({"deniedIPList": ["not-an-ip"]}, "not-an-ip"),
        ({"deniedIPList": "10.0.0.1"}, "deniedIPList"),
        ({"other": 1}, "other"),
    ]:
        r = await node.admin.put(PATH, json={"isEnabled": "true", **body})
        assert r.status_code == 400 and words in r.json()["errorDetails"], (body, r.text)
    assert (await node.admin.get(PATH)).json() == before
