"""One transaction event per gateway call, searchable through the management API."""

from __future__ import annotations

import gc
import time

from tests.gateway.test_runtime import API_KEY_RULE, add_action, key_of, new_app
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def test_event_per_call_with_fields(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", API_KEY_RULE)
    app = await new_app(node, [api["id"]], name="caller")
    ok = await node.gw.get("/Echo/1.0/echo?x=1", headers={"x-gateway-apikey": key_of(app)})
    assert ok.status_code == 200
    denied = await node.gw.get("/Echo/1.0/echo")
    assert denied.status_code == 403
    await node.portico.events.flush()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    r = await node.admin.get("/transactionalEvents/_search", params={
        "apiId": api["id"], "fromDate": day, "toDate": day})
    assert r.status_code == 200, r.text
    events = r.json()["transaction"]
    assert len(events) == 2
    by_code = {e["responseCode"]: e for e in events}
    good, bad = by_code["200"], by_code["403"]
    assert good["apiName"] == "Echo" and good["apiVersion"] == "1.0" and good["status"] == "SUCCESS"
    assert good["applicationId"] == app["id"] and good["applicationName"] == "caller"
    assert good["httpMethod"] == "GET" and good["operationName"] == "/echo"
    assert good["queryParameters"] == {"x": "1"} and good["nativeURL"] == f"{upstream.url}/echo?x=1"
    assert good["totalTime"] >= good["providerTime"] >= 0 and good["correlationID"]
    assert "reqPayload" not in good and "resPayload" not in good  # payloads only when asked for
    assert bad["status"] == "FAILURE" and "applicationId" not in bad
    count = await node.admin.get("/transactionalEvents/_count", params={
        "apiId": api["id"], "fromDate": day, "toDate": day})
    assert count.json()["count"][0]["count"] == 2


async def test_unknown_api_records_nothing(node: Node) -> None:
    assert (await node.gw.get("/Nope/1.0/x")).status_code == 404
    await node.portico.events.flush()
    assert node.portico.events.recorded == 0


async def test_search_finds_the_call_just_made(node: Node, upstream: Upstream) -> None:
    # The writer batches events (up to a second); the search endpoints first write what is pending.
    api = await node.create_api(spec_for(upstream.url))
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
    day = time.strftime("%Y-%m-%d", time.gmtime())
    params = {"apiId": api["id"], "fromDate": day, "toDate": day}
    found = await node.admin.get("/transactionalEvents/_search", params=params)
    assert [e["responseCode"] for e in found.json()["transaction"]] == ["200"]
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
    count = await node.admin.get("/transactionalEvents/_count", params=params)
    assert count.json()["count"][0]["count"] == 2


async def test_call_records_are_tuples_the_garbage_collector_lets_go(node: Node, upstream: Upstream) -> None:
    # Records wait up to a second for the writer; tracked ones would be promoted to the oldest
    # generation by the thousand and set off full collections (long pauses under load).
    api = await node.create_api(spec_for(upstream.url))
    recorder = node.portico.events
    seen: list[object] = []
    recorder.calls._on_batch = lambda: seen.append(recorder.calls.items[-1])  # the gateway appends here
    recorder.calls.batch = len(recorder.calls.items) + 1  # the next call record is a whole batch
    r = await node.gw.get("/Echo/1.0/echo?x=1", headers={"x-trace": "t1"})
    assert r.status_code == 200 and len(seen) == 1
    record = seen[0]
    assert type(record) is tuple and api["id"] in record
    gc.collect()
    gc.collect()
    assert not gc.is_tracked(record)
