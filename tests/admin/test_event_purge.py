"""DELETE /apitransactions (purge jobs) and /apitransactions/jobs through a running node."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from portico.events.purge import IN_PROGRESS
from portico.security import privileges as priv
from portico.store import Store
from portico.store.tables import audit_log, transaction_events
from tests.admin.test_audit import _seed
from tests.events.test_purge import audit_row, event_row
from tests.support.node import Node

DAY_MS = 86_400_000
FEB_26 = 1_488_067_200_000  # 2017-02-26T00:00:00Z


async def rows(store: Store, table: Any) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def finished(admin: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(500):
        r = await admin.get(f"/apitransactions/jobs/{job_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] != IN_PROGRESS:
            return dict(r.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} still in progress")


async def test_purge_older_than_removes_old_events_only(node: Node) -> None:
    store = node.portico.store
    now = int(time.time() * 1000)
    async with store.engine.begin() as conn:
        await conn.execute(insert(transaction_events),
                           [event_row(n, now - 5 * DAY_MS) for n in range(3)] + [event_row(9, now)])
        await conn.execute(insert(audit_log), [audit_row(n, now - 5 * DAY_MS) for n in range(2)])
    r = await node.admin.delete("/apitransactions", params={"eventType": "transactionalEvents", "olderThan": "2d"})
    assert r.status_code == 202, r.text
    job = await finished(node.admin, r.json()["jobId"])
    assert job["status"] == "Completed" and job["purged"] == {"transactionalEvents": 3}
    assert job["eventType"] == ["transactionalEvents"] and job["from"] is None
    assert now - 2 * DAY_MS - 5_000 < job["until"] <= now - 2 * DAY_MS + 60_000
    assert (await rows(store, transaction_events), await rows(store, audit_log)) == (1, 2)


async def test_purge_of_a_range_of_every_type(node: Node) -> None:
    store = node.portico.store
    async with store.engine.begin() as conn:
        await conn.execute(insert(transaction_events), [event_row(n, FEB_26 + n * DAY_MS) for n in range(-1, 3)])
        await conn.execute(insert(audit_log), [audit_row(n, FEB_26 + n * DAY_MS) for n in range(-1, 3)])
    params = {"eventType": "ALL", "from": "2017-02-26 00:00:00", "until": "2017-02-27", "action": "purge"}
    r = await node.admin.delete("/apitransactions", params=params)
    assert r.status_code == 202, r.text
    job = await finished(node.admin, r.json()["jobId"])
    assert (job["purged"]["transactionalEvents"], job["purged"]["auditlogs"], job["purged"]["errorEvents"]) == (2, 2, 0)
    assert (job["from"], job["until"]) == (FEB_26, FEB_26 + 2 * DAY_MS - 1)  # a bare until covers its day
    assert (await rows(store, transaction_events), await rows(store, audit_log)) == (2, 2)
    r = await node.admin.get("/apitransactions/jobs", params={"status": "Completed", "action": "purge"})
    assert r.status_code == 200 and [j["jobId"] for j in r.json()["jobs"]] == [job["jobId"]]
    assert (await node.admin.get("/apitransactions/jobs")).json() == {"jobs": []}  # none in progress


@pytest.mark.parametrize(("params", "fragment"), [
    ({}, "eventType is required"),
    ({"eventType": "pets", "olderThan": "2d"}, "eventType must be one of"),
    ({"eventType": "auditlogs"}, "from, until or olderThan is required"),
    ({"eventType": "auditlogs", "olderThan": "2 days"}, "olderThan"),
    ({"eventType": "auditlogs", "olderThan": "2d", "from": "2024-01-01"}, "not both"),
    ({"eventType": "auditlogs", "from": "2024-02-01", "until": "2024-01-01"}, "after until"),
    ({"eventType": "auditlogs", "from": "soon"}, "from"),
    ({"eventType": "auditlogs", "until": "2024-13-01"}, "until"),
    ({"eventType": "auditlogs", "olderThan": "2d", "action": "archiveAndPurge"}, "archiveAndPurge is not supported"),
    ({"eventType": "auditlogs", "olderThan": "2d", "action": "shred"}, "action must be"),
])
async def test_bad_purges_are_400_and_start_nothing(sqlite_node: Node, params: dict[str, str], fragment: str) -> None:
    r = await sqlite_node.admin.delete("/apitransactions", params=params)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text
    r = await sqlite_node.admin.get("/apitransactions/jobs", params={"status": "Completed"})
    assert r.json() == {"jobs": []}


async def test_unknown_jobs_and_statuses(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.get("/apitransactions/jobs/nope")
    assert r.status_code == 404 and "nope" in r.json()["errorDetails"]
    r = await sqlite_node.admin.get("/apitransactions/jobs", params={"status": "Done"})
    assert r.status_code == 400 and "status must be one of" in r.json()["errorDetails"]


async def test_purging_needs_its_privilege(sqlite_node: Node) -> None:
    viewer, purger = await _seed(sqlite_node, priv.VIEW_ADMIN_CONFIG, priv.MANAGE_EVENT_PURGE)
    params = {"eventType": "auditlogs", "olderThan": "1y"}
    try:
        r = await viewer.delete("/apitransactions", params=params)
        assert r.status_code == 403 and priv.MANAGE_EVENT_PURGE in r.json()["errorDetails"]
        r = await purger.delete("/apitransactions", params=params)
        assert r.status_code == 202, r.text
        assert (await finished(viewer, r.json()["jobId"]))["status"] == "Completed"  # viewing is enough to follow it
    finally:
        await viewer.aclose()
        await purger.aclose()
