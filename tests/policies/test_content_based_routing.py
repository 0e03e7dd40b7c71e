"""contentBasedRouting: JSONPath, XPath and regex rules on the request payload."""

from __future__ import annotations

from tests.gateway.test_runtime import add_action
from tests.policies.routing_support import assert_rejected, group, route_to, values
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


def _rule(uri: str, kind: str, expression: str, value: str | None = None) -> dict[str, object]:
    ident = values(expressionType=kind, expression=expression, **({"value": value} if value else {}))
    return group("contentRules", values(name="r"), route_to(uri), group("payloadIdentifier", ident))


async def test_payload_rules_pick_the_endpoint(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "contentBasedRouting", "routing", [
        route_to(f"{upstream.url}/echo/default"),
        _rule(f"{upstream.url}/echo/express", "jsonPath", "$.order.type", "express"),
        _rule(f"{upstream.url}/echo/xml", "xpath", "/order/type[text()='bulk']"),
        _rule(f"{upstream.url}/echo/regex", "regex", r"urgent-\d+"),
    ])

    async def path(body: bytes) -> str:
        r = await node.gw.post("/Echo/1.0/echo", content=body)
        assert r.status_code == 200, r.text
        assert r.json()["body"] == body.decode()  # the buffered body is still forwarded
        p: str = r.json()["path"]
        return p

    assert await path(b'{"order": {"type": "express"}}') == "/echo/express"
    assert await path(b'{"order": {"type": "normal"}}') == "/echo/default"
    assert await path(b"<order><type>bulk</type></order>") == "/echo/xml"
    assert await path(b"<order><type>other</type></order>") == "/echo/default"
    assert await path(b"this is urgent-42") == "/echo/regex"
    assert await path(b"{not json") == "/echo/default"
    assert await path(b"") == "/echo/default"


async def test_config_validation(node: Node) -> None:
    key = "contentBasedRouting"
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "jsonPath", "$[[[")],
                          "payloadIdentifier")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "xpath", "//[")],
                          "payloadIdentifier")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "regex", "(")],
                          "payloadIdentifier")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "css", "a")], "expressionType")
    await assert_rejected(node, key, [_rule("http://y/", "regex", "a")], "routeTo")
