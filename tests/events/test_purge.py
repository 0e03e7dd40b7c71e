"""Purge jobs of stored runtime data, on both backends: chunks, ranges, kinds, failures, shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, insert, select, text

from portico.events.purge import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    STORED,
    Purge,
    PurgeJobs,
    find_job,
    kinds_of,
    list_jobs,
    purge_kind,
)
from portico.store import Store
from portico.store.tables import audit_log, gateway_events, transaction_events


def event_row(n: int, created: int) -> dict[str, Any]:
    return {"id": f"e-{n}", "creation_date": created, "api_id": "api-1", "status": "SUCCESS", "body": "[]"}


def gateway_row(n: int, created: int, event_type: str) -> dict[str, Any]:
    return {"id": f"g-{n}", "event_type": event_type, "creation_date": created, "body": "{}"}


def audit_row(n: int, created: int) -> dict[str, Any]:
    return {"id": f"a-{n}", "event_type": "ApplicationManagement", "creation_date": created,
            "object_type": "Application", "action": "Update", "object": f"o{n}", "message": "m", "user": "alice",
            "source_machine": "host", "client_ip": "10.0.0.1"}


async def fill(store: Store) -> None:
    """Rows created at 1..10 of each stored kind (monitor and violation events share a table)."""
    async with store.engine.begin() as conn:
        await conn.execute(insert(transaction_events), [event_row(n, n) for n in range(1, 11)])
        await conn.execute(insert(gateway_events), [gateway_row(n, n, "Monitor") for n in range(1, 11)])
        await conn.execute(insert(gateway_events),
                           [gateway_row(n, n - 100, "PolicyViolation") for n in range(101, 111)])
        await conn.execute(insert(audit_log), [audit_row(n, n) for n in range(1, 11)])


async def dates(store: Store, table: Any, **where: str) -> list[int]:
    query = select(table.c.creation_date).order_by(table.c.creation_date)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with store.engine.connect() as conn:
        return [row[0] for row in await conn.execute(query)]


async def test_a_range_is_removed_in_chunks_and_nothing_else(store: Store) -> None:
    await fill(store)
    assert await purge_kind(store, STORED["transactionalEvents"], 3, 9, chunk=2) == 7
    assert await dates(store, transaction_events) == [1, 2, 10]
    assert await purge_kind(store, STORED["transactionalEvents"], None, 2, chunk=2) == 2  # from the first
    assert await dates(store, transaction_events) == [10]
    assert await dates(store, audit_log) == list(range(1, 11))  # other kinds untouched


async def test_kinds_sharing_a_table_are_purged_apart(store: Store) -> None:
    await fill(store)
    assert await purge_kind(store, STORED["monitorEvents"], None, 5) == 5
    assert await dates(store, gateway_events, event_type="Monitor") == [6, 7, 8, 9, 10]
    assert await dates(store, gateway_events, event_type="PolicyViolation") == list(range(1, 11))


async def test_a_job_of_every_kind_records_what_it_removed(store: Store) -> None:
    await fill(store)
    jobs = PurgeJobs(store, chunk=3)
    job_id = await jobs.start(Purge(kinds_of("ALL"), 4, 6))
    await jobs.wait()
    job = await find_job(store, job_id)
    assert job is not None and job["status"] == COMPLETED and job["action"] == "purge"
    assert job["purged"] == {"transactionalEvents": 3, "monitorEvents": 3, "policyViolationEvents": 3,
                             "auditlogs": 3, "errorEvents": 0, "performanceMetrics": 0,
                             "threatProtectionEvents": 0, "lifecycleEvents": 0, "applicationlogs": 0,
                             "mediatorTraceSpan": 0, "serverLogTraceSpan": 0}
    assert (job["from"], job["until"]) == (4, 6) and job["completionDate"] >= job["creationDate"]
    for table in (transaction_events, audit_log):
        assert await dates(store, table) == [1, 2, 3, 7, 8, 9, 10]
    assert await list_jobs(store) == []  # none in progress
    assert [j["jobId"] for j in await list_jobs(store, COMPLETED, "purge")] == [job_id]


async def test_a_failing_store_fails_the_job_and_keeps_the_other_rows(store: Store) -> None:
    await fill(store)
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE gateway_events"))
    jobs = PurgeJobs(store)
    job_id = await jobs.start(Purge(("transactionalEvents", "monitorEvents", "auditlogs"), None, 100))
    await jobs.wait()
    job = await find_job(store, job_id)
    assert job is not None and job["status"] == FAILED and "failed" in job["errorDetails"]
    assert job["purged"] == {"transactionalEvents": 10, "monitorEvents": 0}  # removed before the failure
    assert await dates(store, audit_log) == list(range(1, 11))


async def test_shutdown_ends_running_jobs_failed(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(transaction_events), [event_row(n, n) for n in range(500)])
    jobs = PurgeJobs(store, chunk=1)
    first = await jobs.start(Purge(("transactionalEvents",), None, 1_000))
    for _ in range(500):  # until the first chunks are gone
        if await count(store) < 490:
            break
        await asyncio.sleep(0.01)
    second = await jobs.start(Purge(("auditlogs",), None, 1_000))  # cancelled before it ever runs
    await jobs.close()
    for job_id in (first, second):
        job = await find_job(store, job_id)
        assert job is not None and job["status"] == FAILED and job["errorDetails"] == INTERRUPTED
    left = await count(store)
    assert 0 < left < 490
    job = await find_job(store, first)
    assert job is not None
    # what it removed until then: a chunk whose commit the cancellation interrupted may be missing
    assert 0 <= (500 - left) - job["purged"]["transactionalEvents"] <= 1


async def count(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(transaction_events))).scalar_one())
