"""Global IP access on failed authentication (issue 5): N failures in T seconds from one client IP
block it for a while or put it on the deny list; X-Forwarded-For honoured per setting; the denied
list read and edited through /configurations/denyByIPForFailedAuthConfig; bad input refused; with
the Redis counters (``--redis``) the failures and the block are shared by two nodes."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from portico.counters import REDIS_PREFIX_END
from portico.gateway.parts.ip_deny import add_denied
from tests.gateway.test_runtime import add_action, key_of, new_app, rules
from tests.support.node import Node, running_node
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
    cases: list[tuple[dict[str, Any], str]] = [
        ({"isEnabled": "maybe"}, "isEnabled"),
        ({"maximumFailedAuthRequests": "0"}, "maximumFailedAuthRequests"),
        ({"maximumFailedAuthRequestsDuration": "x"}, "maximumFailedAuthRequestsDuration"),
        ({"whenLimitExceeds": "EXPLODE"}, "whenLimitExceeds"),
        ({"deniedIPList": ["not-an-ip"]}, "not-an-ip"),
        ({"deniedIPList": "10.0.0.1"}, "deniedIPList"),
        ({"other": 1}, "other"),
    ]
    for body, words in cases:
        r = await node.admin.put(PATH, json={"isEnabled": "true", **body})
        assert r.status_code == 400 and words in r.json()["errorDetails"], (body, r.text)
    assert (await node.admin.get(PATH)).json() == before


REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_node(data_dir: Path, prefix: str) -> AbstractAsyncContextManager[Node]:
    """A node counting in the shared Redis under the test's own key prefix."""
    return running_node(None, data_dir, redis_url=REDIS_URL, redis_prefix=prefix)


async def guarded_api(node: Node, upstream: Upstream) -> str:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey"))
    await configure(node, isEnabled="true", maximumFailedAuthRequests="3", maximumFailedAuthRequestsDuration="60",
                    whenLimitExceeds="BLOCK", blockIntervalInSeconds="2")
    return key_of(await new_app(node, [api["id"]]))


async def test_block_shared_by_two_nodes_through_redis_then_expiry(tmp_path: Path, upstream: Upstream) -> None:
    prefix = f"portico-test:{uuid.uuid4().hex}:"
    store = aioredis.Redis.from_url(REDIS_URL)
    try:
        async with redis_node(tmp_path / "a", prefix) as a, redis_node(tmp_path / "b", prefix) as b:
            keys = {a: await guarded_api(a, upstream), b: await guarded_api(b, upstream)}
            if time.time() % 60 > 55:  # the three failures must fall in one 60 s counting window
                await asyncio.sleep(60 - time.time() % 60 + 0.05)
            # two failures on one node and one on the other: three from this client IP in all
            for node in (a, a, b):
                assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": "bad"})).status_code == 403
            for node in (a, b):
                blocked = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": keys[node]})
                assert blocked.status_code == 403 and "blocked" in blocked.json()["Exception"], blocked.text
            stored = [k.decode() async for k in store.scan_iter(match=f"{prefix}*")]
            assert any(k.startswith(f"{prefix}{REDIS_PREFIX_END}ipdeny:block:127.0.0.1@") for k in stored), stored
            assert any(k.startswith(f"{prefix}{REDIS_PREFIX_END}ipdeny:fail:127.0.0.1@") for k in stored), stored
            await asyncio.sleep(2.2)  # blockIntervalInSeconds: the block ends on every node
            for node in (a, b):
                assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": keys[node]})).status_code \
                    == 200
    finally:
        stale = [k async for k in store.scan_iter(match=f"{prefix}*")]
        if stale:
            await store.delete(*stale)
        await store.aclose()


async def test_denied_addresses_are_canonical_and_junk_is_never_stored(node: Node, upstream: Upstream) -> None:
    """The client IP from X-Forwarded-For is the client's text: the same address written another
    way is the same client, and what is not an address never reaches the stored deny list (which
    must stay valid input for PUT)."""
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey"))
    app = await new_app(node, [api["id"]])
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "wattKeys": {"watt.server.enterprisegateway.ignoreXForwardedForHeader": "false"}}})
    await configure(node, isEnabled=True, maximumFailedAuthRequests=2, maximumFailedAuthRequestsDuration=60,
                    whenLimitExceeds="DENY")
    for forwarded in ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", "not-an-ip", "not-an-ip"):
        r = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": "bad", "x-forwarded-for": forwarded})
        assert r.status_code == 403
    denied = await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(app),
                                                          "x-forwarded-for": "2001:db8:0::1"})
    assert denied.status_code == 403 and "denied" in denied.json()["Exception"]
    for _ in range(50):  # written to the settings document in the background
        stored = (await node.admin.get(PATH)).json()
        if stored["deniedIPList"]:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    stored = (await node.admin.get(PATH)).json()
    assert stored["deniedIPList"] == ["2001:db8::1"]
    assert (await node.admin.put(PATH, json=stored)).status_code == 200  # what GET gives, PUT takes


async def test_concurrent_denials_are_all_kept(node: Node) -> None:
    """Nodes (or one node's tasks) adding addresses at once, and an administrator's edit of other
    fields meanwhile, lose none."""
    addresses = [f"10.0.0.{i}" for i in range(1, 9)]
    edits = [node.admin.put(PATH, json={"maximumFailedAuthRequests": str(n)}) for n in (4, 5, 6)]
    results = await asyncio.gather(*(add_denied(node.portico.store, ip) for ip in addresses), *edits)
    assert all(r.status_code == 200 for r in results if r is not None)
    stored = (await node.admin.get(PATH)).json()
    assert sorted(stored["deniedIPList"]) == sorted(addresses)
    assert stored["maximumFailedAuthRequests"] in ("4", "5", "6")
