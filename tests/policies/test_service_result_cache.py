"""serviceResultCache: hits served without the native call, TTL, criteria, size limit, events."""

from __future__ import annotations

import asyncio
import time

from tests.gateway.test_runtime import add_action
from tests.policies.routing_support import assert_rejected, group, values
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def test_hits_skip_the_native_service_until_the_ttl(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "serviceResultCache", "LMT", values(ttl="1s"))

    async def call(query: str) -> tuple[str, str]:
        # The echo answers the request's own x-n header: an old value means the native service was not called.
        r = await node.gw.get(f"/Echo/1.0/echo?{query}", headers={"x-n": str(time.time_ns())})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        return r.json()["headers"]["x-n"], r.text

    first = await call("a=1")
    assert await call("a=1") == first
    assert (await call("a=2"))[0] != first[0]  # another key
    assert (await node.admin.get(f"/serviceResultCache/{api['id']}")).json() == {"Cache size": 2}
    await asyncio.sleep(1.1)
    assert (await node.admin.get(f"/serviceResultCache/{api['id']}")).json() == {"Cache size": 0}
    assert (await call("a=1"))[0] != first[0]  # expired: the native service answered again


async def test_header_criteria_and_whitelists(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "serviceResultCache", "LMT", [*values(ttl="1m"), group(
        "cacheCriteria",
        group("httpHeader", values(httpHeaderName="Accept", whiteList=["application/json", "text/xml"])),
        group("queryParam", values(queryParamName="cache", whiteList=["yes"])))])

    async def call(accept: str, query: str = "cache=yes") -> str:
        r = await node.gw.get(f"/Echo/1.0/echo?{query}", headers={"accept": accept, "x-n": str(time.time_ns())})
        assert r.status_code == 200
        value: str = r.json()["headers"]["x-n"]
        return value

    json_1, json_2 = await call("application/json"), await call("application/json")
    assert json_1 == json_2  # the second came from the cache
    assert await call("text/xml") != json_1  # another header value, another key
    assert await call("text/html") != await call("text/html")  # not whitelisted: never cached
    assert await call("application/json", "cache=no") != await call("application/json", "cache=no")
    r = await node.admin.get("/serviceResultCache", params={"apiName": "Echo", "apiVersion": "1.0"})
    assert r.status_code == 200 and r.json() == {"Cache size": 2}
    r = await node.admin.delete("/serviceResultCache", params={"apiName": "Echo", "apiVersion": "1.0"})
    assert r.status_code == 204
    assert await call("application/json") != json_1


async def test_not_cached_posts_faults_and_large_bodies(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "serviceResultCache", "LMT", values(ttl="1h", **{"max-payload-size": "1000"}))
    await node.gw.get("/Echo/1.0/bytes/5000")
    await node.gw.get("/Echo/1.0/status/404")
    await node.gw.post("/Echo/1.0/echo", content=b"x")
    assert (await node.admin.get(f"/serviceResultCache/{api['id']}")).json() == {"Cache size": 0}
    await node.gw.get("/Echo/1.0/bytes/500")
    assert (await node.admin.get(f"/serviceResultCache/{api['id']}")).json() == {"Cache size": 1}


async def test_cached_response_is_marked_in_the_event(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "serviceResultCache", "LMT", values(ttl="1m"))
    await node.gw.get("/Echo/1.0/echo")
    await node.gw.get("/Echo/1.0/echo")
    await node.portico.events.flush()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    r = await node.admin.get("/transactionalEvents/_search", params={"apiId": api["id"], "fromDate": day,
                                                                     "toDate": day})
    flags = sorted(e.get("cachedResponse", "false") for e in r.json()["transaction"])
    assert flags == ["false", "true"]


async def test_admin_bad_inputs(node: Node) -> None:
    assert (await node.admin.get("/serviceResultCache")).status_code == 400
    r = await node.admin.get("/serviceResultCache", params={"apiName": "Echo"})
    assert r.status_code == 400 and "apiVersion" in r.json()["errorDetails"]
    assert (await node.admin.get("/serviceResultCache", params={"apiName": "No", "apiVersion": "1"})).status_code == 404
    assert (await node.admin.delete("/serviceResultCache", params={"apiName": "No", "apiVersion": "1"})).status_code \
        == 404
    assert (await node.admin.get("/serviceResultCache/unknown")).status_code == 404
    assert (await node.admin.delete("/serviceResultCache/unknown")).status_code == 404


async def test_config_validation(node: Node) -> None:
    key = "serviceResultCache"
    await assert_rejected(node, key, [], "ttl")
    await assert_rejected(node, key, values(ttl="forever"), "ttl")
    await assert_rejected(node, key, values(ttl="0s"), "ttl")
    await assert_rejected(node, key, values(ttl="1m", **{"max-payload-size": "-1"}), "max-payload-size")
    await assert_rejected(node, key, [*values(ttl="1m"), group("cacheCriteria", group(
        "XPATH", values(**{"xpath-exp": "/a"})))], "XPATH")
    await assert_rejected(node, key, [*values(ttl="1m"), group("cacheCriteria", group(
        "httpHeader", values(whiteList=["a"])))], "httpHeaderName")


async def test_one_application_is_never_served_another_ones_answer(sqlite_node: Node, upstream: Upstream) -> None:
    from tests.gateway.test_runtime import API_KEY_RULE, key_of, new_app

    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", API_KEY_RULE)
    await add_action(node, api, "serviceResultCache", "LMT", values(ttl="5m"))
    first, second = await new_app(node, [api["id"]], name="a"), await new_app(node, [api["id"]], name="b")

    async def seen_key(app: dict[str, object]) -> str:
        r = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(app)})
        assert r.status_code == 200
        value: str = r.json()["headers"]["x-gateway-apikey"]
        return value

    assert await seen_key(first) == key_of(first)
    assert await seen_key(second) == key_of(second)  # not the first application's cached answer
    assert await seen_key(first) == key_of(first)
