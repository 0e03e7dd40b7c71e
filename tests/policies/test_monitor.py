"""monitorServicePerformance and monitorSLA: KPI breaches per interval -> Monitor events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select

from portico.store.tables import gateway_events
from tests.gateway.test_runtime import API_KEY_RULE, add_action, key_of, new_app
from tests.policies.routing_support import assert_rejected, group, values
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


def _rule(name: str, op: str, value: str) -> dict[str, Any]:
    return group("monitorRules", values(monitorRuleName=name, monitorRuleOperator=op, value=value))


async def _monitor_events(node: Node, expected: int) -> list[dict[str, Any]]:
    """The Monitor events, waiting (bounded) for the writer to store ``expected`` of them."""
    rows: list[dict[str, Any]] = []
    for _ in range(50):
        async with node.portico.store.engine.connect() as conn:
            res = await conn.execute(select(gateway_events.c.body).where(gateway_events.c.event_type == "Monitor"))
            rows = [json.loads(r[0]) for r in res]
        if len(rows) >= expected:
            break
        await asyncio.sleep(0.1)
    return rows


async def test_performance_breaches_alert_once_per_interval(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "monitorServicePerformance", "LMT", [
        *values(alertInterval="1", alertIntervalUnit="seconds", alertFrequency="every", alertMessage="slow!"),
        _rule("faultCount", "GE", "1"), _rule("totalRequestCount", "GE", "3"),
        _rule("maximumResponseTime", "GT", "250"), _rule("availability", "LT", "50")])
    assert (await node.gw.get("/Echo/1.0/status/500")).status_code == 500
    assert (await node.gw.get("/Echo/1.0/slow/0.3")).status_code == 200
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
    await asyncio.sleep(1.1)
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200  # closes the first interval
    events = await _monitor_events(node, 3)
    await asyncio.sleep(0.3)
    events = await _monitor_events(node, 3)
    by_rule = {e["ruleName"]: e for e in events}
    assert set(by_rule) == {"faultCount", "totalRequestCount", "maximumResponseTime"}, events
    assert by_rule["faultCount"]["actualValue"] == 1 and by_rule["totalRequestCount"]["actualValue"] == 3
    assert by_rule["maximumResponseTime"]["actualValue"] >= 300
    assert all(e["apiId"] == api["id"] and e["alertMessage"] == "slow!" for e in events)
    assert all(e["policyName"] == "monitorServicePerformance" for e in events)


async def test_sla_per_consumer(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", API_KEY_RULE)
    watched = await new_app(node, [api["id"]], name="watched")
    other = await new_app(node, [api["id"]], name="other")
    await add_action(node, api, "monitorSLA", "LMT", [
        *values(alertInterval="1", alertIntervalUnit="seconds", consumerIds=[watched["id"]]),
        _rule("successCount", "GE", "2")])
    for app in (watched, watched, other, other, other):
        r = await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(app)})
        assert r.status_code == 200
    await asyncio.sleep(1.1)
    await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(other)})
    assert await _monitor_events(node, 1) == []  # the other application's calls do not close the window
    await node.gw.get("/Echo/1.0/echo", headers={"x-Gateway-APIKey": key_of(watched)})
    (event,) = await _monitor_events(node, 1)
    assert event["applicationId"] == watched["id"] and event["actualValue"] == 2


async def test_config_validation(node: Node) -> None:
    base = values(alertInterval="1")
    for key in ("monitorServicePerformance", "monitorSLA"):
        await assert_rejected(node, key, base, "monitorRules")
        await assert_rejected(node, key, [*values(alertInterval="0"), _rule("faultCount", "GT", "1")],
                              "alertInterval")
        await assert_rejected(node, key, [*base, _rule("happiness", "GT", "1")], "monitorRuleName")
        await assert_rejected(node, key, [*base, _rule("faultCount", "ABOUT", "1")], "monitorRuleOperator")
        await assert_rejected(node, key, [*base, _rule("faultCount", "GT", "many")], "value")
        await assert_rejected(node, key, [*base, *values(alertFrequency="sometimes"), _rule("faultCount", "GT", "1")],
                              "alertFrequency")
        await assert_rejected(node, key, [*base, *values(alertIntervalUnit="fortnight"),
                                          _rule("faultCount", "GT", "1")], "alertIntervalUnit")
    await assert_rejected(node, "monitorServicePerformance", [*base, *values(consumerIds=["x"]),
                                                              _rule("faultCount", "GT", "1")], "consumerIds")
