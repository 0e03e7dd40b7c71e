"""Audit logs through the management API: what a scripted sequence of writes records, the search
filters, the area selection, the zip download (25,000 records -> three text files), privileges,
bad input, and a failing audit store that must not fail the recorded action."""

from __future__ import annotations

import calendar
import io
import re
import socket
import time
import zipfile
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import insert, text

from portico.audit import AuditEntry
from portico.audit.areas import FLAGS
from portico.audit.recorder import audit_row
from portico.security import privileges as priv
from portico.security.passwords import hash_password
from portico.security.principal import TEAM, USER
from portico.store import Store
from portico.store.tables import audit_log
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

DAY = 86_400_000
HOUR = 3_600_000
PASSWORD = "Audit-pass-1"


async def audit_records(node: Node, **body: Any) -> list[dict[str, Any]]:
    await node.portico.audit.flush()
    r = await node.admin.post("/search", json={"types": ["AUDIT_LOG"], **body})
    assert r.status_code == 200, r.text
    records: list[dict[str, Any]] = r.json()["AUDIT_LOG"]
    return records


async def insert_rows(store: Store, rows: list[dict[str, Any]]) -> None:
    async with store.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(audit_log), rows[start:start + 5000])


def row(created: int, object_type: str, action: str, obj: str, user: str = "alice",
        client_ip: str = "10.0.0.1") -> dict[str, Any]:
    return audit_row(AuditEntry(object_type, action, obj, f"{action} {object_type} {obj}", user, client_ip),
                     "host-a", created)


# -- what is recorded ------------------------------------------------------------------------------

async def test_a_scripted_sequence_of_writes_is_recorded_in_order(node: Node, upstream: Upstream) -> None:
    admin = node.admin
    api = await node.create_api(spec_for(upstream.url, "Petstore"), activate=False)
    api_id = api["id"]
    assert (await admin.put(f"/apis/{api_id}", json={"type": "openapi",
                                                     "apiDefinition": spec_for(upstream.url, "Petstore")})
            ).status_code == 200
    assert (await admin.put(f"/apis/{api_id}/activate")).status_code == 200
    assert (await admin.put("/apis/no-such-api/activate")).status_code == 404  # failed: not recorded
    app = (await admin.post("/applications", json={"name": "Mobile"})).json()
    assert (await admin.put(f"/applications/{app['id']}", json={"name": "Mobile"})).status_code == 200
    assert (await admin.delete(f"/applications/{app['id']}")).status_code == 204
    alias = (await admin.post("/alias", json={"name": "Region", "type": "simple", "value": "eu"})).json()["alias"]
    assert (await admin.put(f"/alias/{alias['id']}", json={"name": "Region", "type": "simple",
                                                           "value": "us"})).status_code == 200
    assert (await admin.delete(f"/alias/{alias['id']}")).status_code == 204
    r = await admin.post("/plans", json={"name": "Basic", "License": "x", "Terms": "t", "cost": {"value": "1USD"}})
    plan_id = r.json()["planResponse"]["id"]
    r = await admin.post("/packages", json={"name": "Gold", "apiIds": [api_id], "planIds": [plan_id]})
    package_id = r.json()["packageResponse"]["id"]
    assert (await admin.put(f"/packages/{package_id}/activate")).status_code == 200
    assert (await admin.put(f"/packages/{package_id}/deactivate")).status_code == 200
    assert (await admin.delete(f"/packages/{package_id}")).status_code == 204
    assert (await admin.delete(f"/plans/{plan_id}")).status_code == 204
    assert (await admin.put(f"/apis/{api_id}/deactivate")).status_code == 200
    assert (await admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"apiKeyHeader": "X-Key"}}})).status_code == 200
    assert (await admin.delete(f"/apis/{api_id}")).status_code == 204
    others = [(await node.create_api(spec_for(upstream.url, n), activate=False))["id"] for n in ("A", "B")]
    assert (await admin.delete("/apis", params={"apiIds": ",".join(others)})).status_code == 204
    assert (await admin.post("/search", json={"types": ["AUDIT_LOG"]})).status_code == 200  # a read

    records = await audit_records(node, sortByField="creationDate", sortOrder="ASC")
    assert [(r["objectType"], r["action"], r["object"]) for r in records] == [
        ("API", "Create", api_id), ("API", "Update", api_id), ("API", "Activate", api_id),
        ("Application", "Create", app["id"]), ("Application", "Update", app["id"]),
        ("Application", "Delete", app["id"]),
        ("Alias", "Create", alias["id"]), ("Alias", "Update", alias["id"]), ("Alias", "Delete", alias["id"]),
        ("Plan", "Create", plan_id), ("Package", "Create", package_id), ("Package", "Activate", package_id),
        ("Package", "Deactivate", package_id), ("Package", "Delete", package_id), ("Plan", "Delete", plan_id),
        ("API", "Deactivate", api_id),
        ("AdministratorSetting", "Update", "settings"),
        ("API", "Delete", api_id),
        ("API", "Create", others[0]), ("API", "Create", others[1]),
        ("API", "Delete", others[0]), ("API", "Delete", others[1]),
    ]
    first = records[0]
    assert first["eventType"] == "APIManagement" and "Petstore" in first["message"]
    assert (first["user"], first["clientIPAddress"]) == ("Administrator", "127.0.0.1")
    assert first["sourceMachine"] == socket.gethostname()
    assert set(first) == {"id", "eventType", "creationDate", "objectType", "action", "object", "message", "user",
                          "sourceMachine", "clientIPAddress"}
    assert {r["eventType"] for r in records} == {"APIManagement", "ApplicationManagement", "AliasManagement",
                                                 "PlanManagement", "PackageManagement", "Administration"}
    assert "'Basic'" in records[9]["message"] and "'Gold'" in records[10]["message"]
    assert abs(first["creationDate"] - time.time() * 1000) < 60_000


# -- searching -------------------------------------------------------------------------------------

@pytest.fixture
async def sample(node: Node) -> tuple[Node, list[str]]:
    """Five records of known ages and fields; returns their ids, newest first."""
    now = int(time.time() * 1000)
    rows = [
        row(now - HOUR, "API", "Create", "petstore"),
        row(now - 3 * DAY, "API", "Delete", "petstore", user="bob"),
        row(now - 10 * DAY, "Application", "Update", "mobile"),
        row(now - 40 * DAY, "Login", "Failed login", "mallory", user="", client_ip="10.9.9.9"),
        row(now - 100 * DAY, "Alias", "Create", "Region", user="Bob"),
    ]
    await insert_rows(node.portico.store, rows)
    return node, [r["id"] for r in rows]


def since(days: str) -> dict[str, Any]:
    return {"attributeName": "creationDate", "range": {"since": days}}


def kw(field: str, keyword: str, operator: str | None = None) -> dict[str, Any]:
    entry = {"attributeName": field, "keyword": keyword}
    return entry if operator is None else {**entry, "operator": operator}


@pytest.mark.parametrize(("body", "expected"), [
    ({}, [0, 1, 2, 3, 4]),
    ({"scope": [since("2d")]}, [0]),
    ({"scope": [since("7d")]}, [0, 1]),
    ({"scope": [since("30d")]}, [0, 1, 2]),
    ({"scope": [since("60d")]}, [0, 1, 2, 3]),
    ({"scope": [since("90d")]}, [0, 1, 2, 3]),
    ({"scope": [kw("action", "Create|Update")]}, [0, 2, 4]),
    ({"scope": [kw("objectType", "API")]}, [0, 1]),  # anchored: not "Application"
    ({"scope": [kw("user", "ob", "contains")]}, [1, 4]),  # case ignored
    ({"scope": [kw("user", "bob", "equals")]}, [1]),
    ({"scope": [kw("user", "alice", "notEquals")]}, [1, 3, 4]),
    ({"scope": [kw("object", "pet", "startsWith")]}, [0, 1]),
    ({"scope": [kw("object", "ion", "endsWith")]}, [4]),
    ({"scope": [kw("clientIPAddress", "10.9.9.9", "equals")]}, [3]),
    ({"scope": [kw("eventType", "UserManagement")]}, [3]),
    ({"scope": [kw("objectType", "API", "equals"), kw("user", "alice", "equals")]}, [0]),
    ({"condition": "or", "scope": [kw("user", "alice", "equals"), kw("objectType", "Alias", "equals")]},
     [0, 2, 4]),
    ({"condition": "or", "scope": [since("30d"), kw("user", "alice", "equals"), kw("objectType", "Alias")]},
     [0, 2]),  # the time range narrows whatever the condition
    ({"from": 1, "size": 2}, [1, 2]),
    ({"sortByField": "creationDate", "sortOrder": "ASC"}, [4, 3, 2, 1, 0]),
    ({"sortByField": "action"}, [4, 0, 1, 3, 2]),  # Create (oldest first on ties), Delete, Failed login, Update
])
async def test_search_filters(sample: tuple[Node, list[str]], body: dict[str, Any], expected: list[int]) -> None:
    node, ids = sample
    assert [r["id"] for r in await audit_records(node, **body)] == [ids[i] for i in expected]


async def test_custom_range_response_fields_and_count(sample: tuple[Node, list[str]]) -> None:
    node, ids = sample
    now = int(time.time() * 1000)
    eleven_days_ago = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime((now - 11 * DAY) / 1000))
    scope = [{"attributeName": "creationDate", "range": {"from": eleven_days_ago, "to": now - 2 * DAY}}]
    assert [r["id"] for r in await audit_records(node, scope=scope)] == [ids[1], ids[2]]
    records = await audit_records(node, scope=[since("2d")], responseFields=["objectType", "user"])
    assert records == [{"objectType": "API", "user": "alice"}]
    r = await node.admin.post("/search/_count", json={"types": ["audit_log"], "scope": [since("7d")],
                                                      "size": 1, "responseFields": ["nope"]})
    assert r.status_code == 200 and r.json() == {"audit_log": 2}, r.text


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "types"),
    ({"types": "AUDIT_LOG"}, "types"),
    ({"types": ["ALIAS"]}, "does not search type ALIAS"),
    ({"types": ["NOPE"]}, "unknown search type"),
    ({"types": ["AUDIT_LOG"], "bogus": 1}, "bogus"),
    ({"types": ["AUDIT_LOG"], "aggregations": [{"type": "metrics"}]}, "aggregations"),
    ({"types": ["AUDIT_LOG"], "condition": "xor"}, "condition"),
    ({"types": ["AUDIT_LOG"], "scope": [kw("colour", "red")]}, "colour"),
    ({"types": ["AUDIT_LOG"], "scope": [{"attributeName": "user"}]}, "keyword"),
    ({"types": ["AUDIT_LOG"], "scope": [kw("user", "a", "like")]}, "operator"),
    ({"types": ["AUDIT_LOG"], "scope": [kw("user", "(")]}, "invalid pattern"),
    ({"types": ["AUDIT_LOG"], "scope": [{"attributeName": "user", "range": {"since": "2d"}}]}, "creationDate only"),
    ({"types": ["AUDIT_LOG"], "scope": [since("3 days")]}, "since"),
    ({"types": ["AUDIT_LOG"], "scope": [kw("creationDate", "1")]}, "range"),
    ({"types": ["AUDIT_LOG"], "scope": [{"attributeName": "creationDate", "range": {"from": "yesterday"}}]},
     "range from"),
    ({"types": ["AUDIT_LOG"], "scope": [{"attributeName": "creationDate",
                                         "range": {"from": "2024-02-01", "to": "2024-01-01"}}]}, "after"),
    ({"types": ["AUDIT_LOG"], "scope": [{"attributeName": "user", "keyword": "a", "rawFieldKey": "x"}]},
     "rawFieldKey"),
    ({"types": ["AUDIT_LOG"], "size": 20_000}, "at most 10000"),
    ({"types": ["AUDIT_LOG"], "from": 2**63}, "'from'"),
    ({"types": ["AUDIT_LOG"], "scope": [kw("user", "a\u0000b", "equals")]}, "NUL"),
    ({"types": ["AUDIT_LOG"], "size": "10"}, "size"),
    ({"types": ["AUDIT_LOG"], "responseFields": ["nope"]}, "nope"),
    ({"types": ["AUDIT_LOG"], "sortByField": "nope"}, "sort"),
    ({"types": ["AUDIT_LOG"], "sortOrder": "UP"}, "sortOrder"),
])
async def test_bad_searches_are_400_naming_the_problem(sqlite_node: Node, body: dict[str, Any],
                                                       fragment: str) -> None:
    r = await sqlite_node.admin.post("/search", json=body)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text


# -- area selection --------------------------------------------------------------------------------

async def test_destination_selects_the_recorded_areas(node: Node, upstream: Upstream) -> None:
    r = await node.admin.get("/configurations/auditlogDestinationConfig")
    assert r.status_code == 200 and r.json() == {name: "true" for name in FLAGS}
    assert "sendAuditlogAPIManagementEvent" in FLAGS and len(FLAGS) == 13
    r = await node.admin.put("/configurations/auditlogDestinationConfig", json={
        "sendAuditlogAPIManagementEvent": "false", "sendAuditlogAliasManagementEvent": True})
    assert r.status_code == 200, r.text
    expected = {name: "false" if name == "sendAuditlogAPIManagementEvent" else "true" for name in FLAGS}
    assert r.json() == expected
    for bad, fragment in (({"enabled": "false"}, "enabled"),
                          ({"sendAuditlogUserManagementEvent": "maybe"}, "sendAuditlogUserManagementEvent")):
        r = await node.admin.put("/configurations/auditlogDestinationConfig", json=bad)
        assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text
    assert (await node.admin.get("/configurations/auditlogDestinationConfig")).json() == expected

    await node.create_api(spec_for(upstream.url), activate=True)
    await node.admin.post("/alias", json={"name": "Region", "type": "simple", "value": "eu"})
    records = await audit_records(node, sortByField="creationDate", sortOrder="ASC")
    assert [(r["objectType"], r["action"]) for r in records] == [
        ("AdministratorSetting", "Update"), ("Alias", "Create")]
    assert records[0]["object"] == "auditlogDestinationConfig"
    assert node.portico.audit.skipped == 2  # the API's create and activate


# -- download --------------------------------------------------------------------------------------

def _unzip(response: httpx.Response) -> dict[str, list[dict[str, Any]]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert re.fullmatch(r'attachment; filename="auditlogs_\d+\.zip"', response.headers["content-disposition"])
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: [orjson.loads(line) for line in archive.read(name).splitlines()]
                for name in archive.namelist()}


async def test_download_25000_records_as_three_text_files(node: Node) -> None:
    now = int(time.time() * 1000)
    base = now - DAY
    rows = [row(base + i, "Application" if i % 5 == 0 else "API", "Update", f"o{i}") for i in range(25_000)]
    rows += [row(now - 10 * DAY + i, "Alias", "Delete", f"old{i}") for i in range(3)]
    await insert_rows(node.portico.store, rows)

    params = {"eventType": "auditlogs", "startDate": str(base), "endDate": str(now)}
    files = _unzip(await node.admin.get("/apitransactions", params=params))
    assert list(files) == ["auditlogs_1.txt", "auditlogs_2.txt", "auditlogs_3.txt"]
    assert [len(records) for records in files.values()] == [10_000, 10_000, 5_000]
    everything = [r for records in files.values() for r in records]
    assert [r["object"] for r in everything] == [f"o{i}" for i in range(25_000)]  # oldest first
    assert everything[0] == {"id": rows[0]["id"], "eventType": "ApplicationManagement",
                             "creationDate": base, "objectType": "Application", "action": "Update",
                             "object": "o0", "message": "Update Application o0", "user": "alice",
                             "sourceMachine": "host-a", "clientIPAddress": "10.0.0.1"}

    files = _unzip(await node.admin.get("/apitransactions", params={**params, "objectType": "Application"}))
    assert [len(records) for records in files.values()] == [5_000]
    files = _unzip(await node.admin.get("/apitransactions", params={"eventType": "auditlogs", "duration": "5d"}))
    assert [[r["object"] for r in records] for records in files.values()] == [["old0", "old1", "old2"]]
    files = _unzip(await node.admin.get("/apitransactions", params={**params, "user": "nobody"}))
    assert files == {"auditlogs_1.txt": []}


@pytest.mark.parametrize(("params", "fragment"), [
    ({}, "eventType"),
    ({"eventType": "transactionalEvents", "duration": "2d"}, "only eventType=auditlogs"),
    ({"eventType": "pets", "duration": "2d"}, "eventType must be one of"),
    ({"eventType": "auditlogs"}, "startDate and endDate, or duration"),
    ({"eventType": "auditlogs", "startDate": "2024-01-01"}, "startDate and endDate, or duration"),
    ({"eventType": "auditlogs", "duration": "2 days"}, "duration"),
    ({"eventType": "auditlogs", "duration": "2d", "startDate": "2024-01-01"}, "not both"),
    ({"eventType": "auditlogs", "startDate": "2024-02-01", "endDate": "2024-01-01"}, "after"),
    ({"eventType": "auditlogs", "startDate": "soon", "endDate": "2024-01-01"}, "startDate"),
    ({"eventType": "auditlogs", "duration": "2d", "user": "(("}, "invalid pattern"),
])
async def test_bad_downloads_are_400(sqlite_node: Node, params: dict[str, str], fragment: str) -> None:
    r = await sqlite_node.admin.get("/apitransactions", params=params)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text


# -- privileges and failures -----------------------------------------------------------------------

async def _seed(node: Node, *held: str) -> list[httpx.AsyncClient]:
    stored = hash_password(PASSWORD)
    clients = []
    async with node.portico.store.transaction() as tx:
        for privilege in held:
            login = re.sub(r"[^a-z]+", "-", privilege.lower()).strip("-")
            await tx.insert(USER, login, {"id": login, "loginId": login, "passwordHash": stored, "active": True},
                            name=login)
            await tx.insert(TEAM, f"team-{login}", {"id": f"team-{login}", "name": login, "groupIds": [],
                                                    "privilege": priv.to_bits([privilege]), "userIds": [login]},
                            name=f"team-{login}")
            clients.append(httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=(login, PASSWORD)))
    return clients


async def test_privileges_and_the_caller_recorded(sqlite_node: Node, upstream: Upstream) -> None:
    viewer, provider, destinations = await _seed(sqlite_node, priv.VIEW_ADMIN_CONFIG, priv.MANAGE_APIS,
                                                 priv.MANAGE_DESTINATIONS)
    search = {"types": ["AUDIT_LOG"]}
    download = {"eventType": "auditlogs", "duration": "1d"}
    try:
        r = await provider.post("/apis", json={"type": "openapi", "apiDefinition": spec_for(upstream.url)})
        assert r.status_code == 200, r.text
        await sqlite_node.portico.audit.flush()
        r = await viewer.post("/search", json=search)
        assert r.status_code == 200 and [x["user"] for x in r.json()["AUDIT_LOG"]] == ["manage-apis"], r.text
        assert (await viewer.get("/apitransactions", params=download)).status_code == 200
        assert (await viewer.get("/configurations/auditlogDestinationConfig")).status_code == 200
        r = await viewer.put("/configurations/auditlogDestinationConfig", json={})
        assert r.status_code == 403 and priv.MANAGE_DESTINATIONS in r.json()["errorDetails"]
        for call in (provider.post("/search", json=search), provider.post("/search/_count", json=search),
                     provider.get("/apitransactions", params=download)):
            r = await call
            assert r.status_code == 403 and priv.VIEW_ADMIN_CONFIG in r.json()["errorDetails"], r.text
        r = await destinations.put("/configurations/auditlogDestinationConfig",
                                   json={"sendAuditlogPlanManagementEvent": "false"})
        assert r.status_code == 200, r.text
    finally:
        for client in (viewer, provider, destinations):
            await client.aclose()


async def test_a_failing_audit_store_does_not_fail_the_action(sqlite_node: Node) -> None:
    recorder = sqlite_node.portico.audit
    recorder.retry_backoff, recorder.max_attempts = 0.01, 2
    async with sqlite_node.portico.store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE audit_log"))
    r = await sqlite_node.admin.post("/alias", json={"name": "Region", "type": "simple", "value": "eu"})
    assert r.status_code == 201, r.text
    alias_id = r.json()["alias"]["id"]
    await recorder.flush()
    assert (recorder.recorded, recorder.written, recorder.failed) == (1, 0, 1)
    assert (await sqlite_node.admin.get(f"/alias/{alias_id}")).status_code == 200
    r = await sqlite_node.admin.post("/search", json={"types": ["AUDIT_LOG"]})
    assert r.status_code == 503 and "audit log" in r.json()["errorDetails"], r.text


async def test_download_takes_the_reference_date_format(sqlite_node: Node) -> None:
    def at(moment: str) -> int:
        return calendar.timegm(time.strptime(moment, "%Y-%m-%d %H:%M:%S")) * 1000  # UTC, as the server reads it

    rows = [row(at("2017-12-17 23:59:59"), "API", "Create", "before"),
            row(at("2017-12-18 00:00:00"), "API", "Create", "first"),
            row(at("2017-12-18 23:00:00"), "API", "Update", "second"),
            row(at("2017-12-19 00:00:01"), "API", "Delete", "after")]
    await insert_rows(sqlite_node.portico.store, rows)
    files = _unzip(await sqlite_node.admin.get("/apitransactions", params={
        "eventType": "auditlogs", "startDate": "2017-12-18 00:00:00", "endDate": "2017-12-19 00:00:00"}))
    assert [r["object"] for r in files["auditlogs_1.txt"]] == ["first", "second"]


async def test_a_slow_pattern_is_stopped_with_a_400(node: Node) -> None:
    """Failed logins put any text in the log; a regular expression that backtracks over it runs under a
    time limit (audit.query.PATTERN_SECONDS) on both stores instead of holding the database."""
    from portico.audit.query import PATTERN_SECONDS

    planted = "ab" * 120
    async with httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=(planted, "x")) as c:
        assert (await c.get("/apis")).status_code == 401
    await node.portico.audit.flush()
    slow = r"(.*)(.*)(.*)(.*)(.*)\5\4\3\2\1"   # seconds to minutes over 240 characters, on both engines
    scope = [{"attributeName": "object", "keyword": slow}]
    now = int(time.time() * 1000)
    for method, path, kwargs in (
        ("POST", "/search", {"json": {"types": ["AUDIT_LOG"], "scope": scope}}),
        ("POST", "/search/_count", {"json": {"types": ["AUDIT_LOG"], "scope": scope}}),
        ("GET", "/apitransactions", {"params": {"eventType": "auditlogs", "startDate": str(now - DAY),
                                                "endDate": str(now + DAY), "object": slow}}),
    ):
        started = time.monotonic()
        r = await node.admin.request(method, path, **kwargs)
        took = time.monotonic() - started
        assert r.status_code == 400 and "took longer" in r.json()["errorDetails"], (path, r.status_code, r.text)
        assert took < PATTERN_SECONDS + 8, (path, took)  # unstopped, it runs for minutes; a loaded CI machine is slow
    # a quick pattern over the same rows still answers
    r = await node.admin.post("/search", json={"types": ["AUDIT_LOG"], "scope": [
        {"attributeName": "object", "keyword": "(ab)+"}]})
    assert r.status_code == 200 and [x["object"] for x in r.json()["AUDIT_LOG"]] == [planted]
