"""throttle (Traffic Optimization): exact limits under concurrency on both counter backends,
per-consumer counters, violation alerts, Redis failure modes, config validation."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from portico.store.tables import gateway_events
from tests.gateway.test_runtime import add_action, key_of, new_app, rules
from tests.support.node import Node, running_node
from tests.support.process import free_port
from tests.support.upstream import Upstream, spec_for

REDIS_URL = "redis://127.0.0.1:6379/0"


def throttle(limit: int, interval: int = 1, unit: str = "hours", consumers: list[str] | None = None,
             **extra: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"templateKey": "throttleRule", "parameters": [
            {"templateKey": "throttleRuleName", "values": ["requestCount"]},
            {"templateKey": "monitorRuleOperator", "values": ["GT"]},
            {"templateKey": "value", "values": [str(limit)]}]},
        {"templateKey": "destination", "parameters": [{"templateKey": "destinationType", "values": ["GATEWAY"]}]},
        {"templateKey": "alertInterval", "values": [str(interval)]},
        {"templateKey": "alertIntervalUnit", "values": [unit]},
        {"templateKey": "alertFrequency", "values": ["once"]},
        {"templateKey": "alertMessage", "values": ["limit breached"]},
        {"templateKey": "consumerIds", "values": consumers or ["AnyConsumers"]},
    ]
    params += [{"templateKey": k, "values": [v]} for k, v in extra.items()]
    return params


async def burst(node: Node, path: str, n: int, headers: dict[str, str] | None = None) -> list[int]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=f"{node.base}/gateway", timeout=30, limits=limits) as client:
        responses = await asyncio.gather(*(client.get(path, headers=headers) for _ in range(n)))
    return [r.status_code for r in responses]


@pytest.fixture(params=["memory", "redis"])
async def any_backend_node(request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path) -> Any:
    options = {"redis_url": REDIS_URL} if request.param == "redis" else {}
    async with running_node(sqlite_url, tmp_path / "data", **options) as n:
        yield n


async def test_limit_is_exact_with_200_concurrent_clients(any_backend_node: Node, upstream: Upstream) -> None:
    node = any_backend_node
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "throttle", "LMT", throttle(37))
    await node.reload()
    statuses = await burst(node, "/Echo/1.0/echo", 200)
    assert statuses.count(200) == 37 and statuses.count(429) == 163
    denied = await node.gw.get("/Echo/1.0/echo")
    assert denied.status_code == 429
    assert 1 <= int(denied.headers["retry-after"]) <= 3600
    await asyncio.sleep(0.5)
    async with node.portico.store.read() as tx:
        rows = (await tx.connection.execute(
            select(gateway_events).where(gateway_events.c.api_id == api["id"]))).all()
    assert len(rows) == 1 and rows[0]._mapping["event_type"] == "PolicyViolation"  # alertFrequency once
    assert "limit breached" in rows[0]._mapping["body"]


async def test_window_resets_and_per_consumer_counters(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey"))
    await add_action(node, api, "throttle", "LMT", throttle(2, 2, "seconds", consumerSpecificCounter="true"))
    a, b = await new_app(node, [api["id"]], name="a"), await new_app(node, [api["id"]], name="b")
    # Start right after a 2 s boundary so the whole check runs in one window.
    await asyncio.sleep(2 - (time.time() % 2) + 0.05)
    for app in (a, b):
        got = [(await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(app)})).status_code
               for _ in range(3)]
        assert got == [200, 200, 429]
    await asyncio.sleep(2 - (time.time() % 2) + 0.05)
    assert (await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(a)})).status_code == 200


async def test_only_listed_consumers_are_limited(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey"))
    a, b = await new_app(node, [api["id"]], name="a"), await new_app(node, [api["id"]], name="b")
    await add_action(node, api, "throttle", "LMT", throttle(1, consumers=[a["id"]]))
    await node.reload()
    got_a = [(await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(a)})).status_code
             for _ in range(2)]
    got_b = [(await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(b)})).status_code
             for _ in range(3)]
    assert got_a == [200, 429] and got_b == [200, 200, 200]


@pytest.mark.parametrize(("fail_open", "expected"), [("true", 200), ("false", 503)])
async def test_redis_unreachable(sqlite_url: str, tmp_path: Path, upstream: Upstream, fail_open: str,
                                 expected: int) -> None:
    async with running_node(sqlite_url, tmp_path / "data", redis_url="redis://127.0.0.1:1/0") as node:
        api = await node.create_api(spec_for(upstream.url))
        await add_action(node, api, "throttle", "LMT", throttle(1))
        r = await node.admin.put("/configurations/settings", json={"preferredSettings": {
            "extendedKeys": {"rateLimitFailOpen": fail_open}}})
        assert r.status_code == 200, r.text
        await node.reload()
        got = [(await node.gw.get("/Echo/1.0/echo")).status_code for _ in range(3)]
        assert got == [expected] * 3


def start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("redis-server did not start")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_redis_outage_and_recovery(sqlite_url: str, tmp_path: Path, upstream: Upstream) -> None:
    """A private Redis goes away (calls pass: fail open) and comes back: limits apply again."""
    port = free_port()
    redis_proc = start_redis(port)
    try:
        async with running_node(sqlite_url, tmp_path / "data", redis_url=f"redis://127.0.0.1:{port}/0") as node:
            api = await node.create_api(spec_for(upstream.url))
            await add_action(node, api, "throttle", "LMT", throttle(2))
            await node.reload()
            assert [(await node.gw.get("/Echo/1.0/echo")).status_code for _ in range(3)] == [200, 200, 429]
            redis_proc.terminate()
            redis_proc.wait(10)
            assert [(await node.gw.get("/Echo/1.0/echo")).status_code for _ in range(3)] == [200] * 3
            redis_proc = start_redis(port)  # empty again: a fresh window of counts
            await asyncio.sleep(1.1)  # past the back-off
            assert [(await node.gw.get("/Echo/1.0/echo")).status_code for _ in range(3)] == [200, 200, 429]
    finally:
        redis_proc.kill()
        redis_proc.wait(10)


async def test_identical_rules_count_a_call_once(sqlite_node: Node, upstream: Upstream) -> None:
    api = await sqlite_node.create_api(spec_for(upstream.url))
    await add_action(sqlite_node, api, "throttle", "LMT", throttle(2))
    await add_action(sqlite_node, api, "throttle", "LMT", throttle(2))
    await sqlite_node.reload()
    assert [(await sqlite_node.gw.get("/Echo/1.0/echo")).status_code for _ in range(3)] == [200, 200, 429]


async def test_rules_for_different_consumers_count_apart(sqlite_node: Node, upstream: Upstream) -> None:
    """Two rules with the same limit, one for application a and one for b: each has its own counter
    (a's calls do not use up b's allowance)."""
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey"))
    a, b = await new_app(node, [api["id"]], name="a"), await new_app(node, [api["id"]], name="b")
    await add_action(node, api, "throttle", "LMT", throttle(2, consumers=[a["id"]]))
    await add_action(node, api, "throttle", "LMT", throttle(2, consumers=[b["name"]]))
    await node.reload()
    for app in (a, b):
        got = [(await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(app)})).status_code
               for _ in range(3)]
        assert got == [200, 200, 429]


async def test_rules_on_different_resources_count_apart(sqlite_node: Node, upstream: Upstream) -> None:
    """The same limit on two resources (resource-scoped policies): each resource has its own counter."""
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    for path in ("/echo", "/status/{id}"):
        r = await node.admin.post("/policyActions", json={"policyAction": {
            "templateKey": "throttle", "names": [], "parameters": throttle(2)}})
        assert r.status_code == 201, r.text
        r = await node.admin.post(f"/policies?apiId={api['id']}", json={"policy": {
            "names": [{"value": path}], "policyScope": "RESOURCE", "scope": {"resourcePath": path, "methods": ["GET"]},
            "policyEnforcements": [{"stageKey": "LMT", "enforcements": [
                {"enforcementObjectId": r.json()["policyAction"]["id"], "order": "0"}]}]}})
        assert r.status_code == 201, r.text
    await node.reload()
    for path in ("/Echo/1.0/echo", "/Echo/1.0/status/200"):
        assert [(await node.gw.get(path)).status_code for _ in range(3)] == [200, 200, 429]


async def test_unknown_consumer_ids_need_an_application(sqlite_node: Node, upstream: Upstream) -> None:
    api = await sqlite_node.create_api(spec_for(upstream.url))
    await add_action(sqlite_node, api, "throttle", "LMT", throttle(1, consumers=[str(uuid.uuid4())]))
    await sqlite_node.reload()
    assert [(await sqlite_node.gw.get("/Echo/1.0/echo")).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize(("params", "field"), [
    (throttle(0), "throttleRule.value"),
    (throttle(5, 0), "alertInterval"),
    (throttle(5, 1, "fortnights"), "alertIntervalUnit"),
    (throttle(5)[1:], "throttleRule"),
    (throttle(5, alertFrequency="sometimes"), "alertFrequency"),
    ([*throttle(5), {"templateKey": "bogus", "values": ["1"]}], "bogus"),
])
async def test_bad_config_is_rejected(sqlite_node: Node, params: list[dict[str, Any]], field: str) -> None:
    r = await sqlite_node.admin.post("/policyActions", json={"policyAction": {
        "names": [{"value": "t", "locale": "en"}], "templateKey": "throttle", "parameters": params}})
    assert r.status_code == 400, r.text
    assert f"parameter '{field}'" in r.json()["errorDetails"]


async def test_ge_operator_breaches_when_the_count_reaches_value(sqlite_node: Node, upstream: Upstream) -> None:
    api = await sqlite_node.create_api(spec_for(upstream.url))
    params = throttle(3)
    params[0]["parameters"][1]["values"] = ["GE"]
    await add_action(sqlite_node, api, "throttle", "LMT", params)
    await sqlite_node.reload()
    assert [(await sqlite_node.gw.get("/Echo/1.0/echo")).status_code for _ in range(3)] == [200, 200, 429]
