"""contextBasedRouting: rules on headers, query, method, client IP, time/date, with AND/OR."""

from __future__ import annotations

from tests.gateway.test_runtime import add_action
from tests.policies.routing_support import assert_rejected, group, route_to, values
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


def _rule(uri: str, operator: str, *conditions: list[dict[str, object]]) -> dict[str, object]:
    return group("contextRules", values(name="r", contextConditionOperator=operator), route_to(uri),
                 *[group("contextCondition", c) for c in conditions])


async def test_rules_pick_the_endpoint(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "contextBasedRouting", "routing", [
        route_to(f"{upstream.url}/echo/default"),
        _rule(f"{upstream.url}/echo/eu-post", "and",
              values(conditionVariable="Custom", conditionName="${request.headers.x-region}", conditionValue="eu"),
              values(conditionVariable="predefined", conditionDataType="HTTP_METHOD", conditionValue="POST")),
        _rule(f"{upstream.url}/echo/tier", "or",
              values(conditionVariable="Custom", conditionName="request.query.tier", conditionOperator="GE",
                     conditionValue="10"),
              values(conditionVariable="Date", conditionOperator="LT", conditionValue="2000-01-01")),
        _rule(f"{upstream.url}/echo/local", "and",
              values(conditionVariable="IPV4", fromIp="127.0.0.1", toIp="127.0.0.255"),
              values(conditionVariable="Time", conditionOperator="GE", conditionValue="00:00"),
              values(conditionVariable="Custom", conditionName="${request.headers.x-local}",
                     conditionOperator="EXISTS")),
    ])

    async def path(method: str = "GET", **kw: object) -> str:
        r = await node.gw.request(method, "/Echo/1.0/echo", **kw)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        p: str = r.json()["path"]
        return p

    assert await path("POST", headers={"x-region": "eu"}) == "/echo/eu-post"
    assert await path("GET", headers={"x-region": "eu"}) == "/echo/default"  # AND: the method does not fit
    assert await path(params={"tier": "12"}) == "/echo/tier"  # numbers compare as numbers
    assert await path(params={"tier": "9"}) == "/echo/default"
    assert await path(headers={"x-local": "1"}) == "/echo/local"


async def test_consumer_condition(node: Node, upstream: Upstream) -> None:
    from tests.gateway.test_runtime import API_KEY_RULE, key_of, new_app

    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", API_KEY_RULE)
    gold = await new_app(node, [api["id"]], name="gold")
    other = await new_app(node, [api["id"]], name="other")
    await add_action(node, api, "contextBasedRouting", "routing", [
        route_to(f"{upstream.url}/echo/default"),
        _rule(f"{upstream.url}/echo/gold", "and", values(conditionVariable="Consumer", conditionValue=gold["id"]))])
    r = await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(gold)})
    assert r.json()["path"] == "/echo/gold"
    r = await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(other)})
    assert r.json()["path"] == "/echo/default"


async def test_config_validation(node: Node) -> None:
    key = "contextBasedRouting"
    await assert_rejected(node, key, [], "routeTo")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "xor", values(
        conditionVariable="Custom", conditionName="a", conditionValue="b"))], "contextConditionOperator")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "and", values(
        conditionVariable="Weather", conditionValue="b"))], "conditionVariable")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "and", values(
        conditionVariable="IPV4", fromIp="1.2.3.4"))], "contextCondition")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "and", values(
        conditionVariable="IPV4", fromIp="1.2.3.400", toIp="1.2.3.5"))], "fromIp")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "and", values(
        conditionVariable="Date", conditionOperator="LT", conditionValue="yesterday"))], "contextCondition")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("http://y/", "and", values(
        conditionVariable="Custom", conditionName="a", conditionOperator="LIKE", conditionValue="b"))],
        "conditionOperator")
    await assert_rejected(node, key, [route_to("http://x/"), _rule("ftp://y/", "and", values(
        conditionVariable="Custom", conditionName="a", conditionValue="b"))], "endpointUri")
