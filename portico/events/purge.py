"""Purging stored runtime data (``DELETE /apitransactions``): the kinds Portico stores, the rows a
purge removes, and the jobs that remove them.

A purge runs as a job on the node that accepted it, off the request: rows go in chunks of
``CHUNK`` per transaction, so the gateway's event writer and the management API wait for SQLite's
write lock no longer than one chunk takes. Each job is a row of ``event_jobs``, readable from
every node; a job cut short by a shutdown ends ``Failed``, with what it had removed so far (less
the chunk whose commit the shutdown interrupted, when the database committed it nonetheless)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, text, update

from portico.store import Store
from portico.store.db import now_ms
from portico.store.tables import audit_log, event_jobs, gateway_events, transaction_events

log = logging.getLogger(__name__)

CHUNK = 5_000
IN_PROGRESS, COMPLETED, FAILED = "In progress", "Completed", "Failed"
INTERRUPTED = "the purge was interrupted by a shutdown of the node running it"


@dataclass(frozen=True)
class StoredKind:
    """Where rows of one reference event type live: a table, narrowed to some ``event_type`` values."""

    table: Table
    event_types: tuple[str, ...] = ()


# The reference's event types that Portico stores, and where.
STORED: dict[str, StoredKind] = {
    "transactionalEvents": StoredKind(transaction_events),
    "monitorEvents": StoredKind(gateway_events, ("Monitor", "MonitorEvent")),
    "policyViolationEvents": StoredKind(gateway_events, ("PolicyViolation",)),
    "auditlogs": StoredKind(audit_log),
}
# The reference's other event types: Portico keeps none of them, so a purge of one removes nothing.
NOT_STORED = ("errorEvents", "performanceMetrics", "threatProtectionEvents", "lifecycleEvents",
              "applicationlogs", "mediatorTraceSpan", "serverLogTraceSpan")
ALL = "ALL"
EVENT_TYPES = (*STORED, *NOT_STORED, ALL)


@dataclass(frozen=True)
class Purge:
    """What one purge removes: rows of ``event_types`` created from ``from_ms`` (None: from the
    first) until ``until_ms``, both inclusive, epoch milliseconds."""

    event_types: tuple[str, ...]
    from_ms: int | None
    until_ms: int

    def as_json(self) -> dict[str, Any]:
        return {"eventType": list(self.event_types), "from": self.from_ms, "until": self.until_ms}


def kinds_of(event_type: str) -> tuple[str, ...]:
    """The event types a purge of ``event_type`` covers (``ALL``: every one); ValueError if unknown."""
    if event_type == ALL:
        return (*STORED, *NOT_STORED)
    if event_type not in STORED and event_type not in NOT_STORED:
        raise ValueError(event_type)
    return (event_type,)


async def purge_kind(store: Store, kind: StoredKind, from_ms: int | None, until_ms: int, chunk: int = CHUNK,
                     removed_so_far: Callable[[int], None] | None = None) -> int:
    """Delete the rows of ``kind`` created in the range, ``chunk`` per transaction; the count removed.
    ``removed_so_far`` is told the running count after each chunk."""
    table = kind.table.name
    row = "rowid" if store.backend == "sqlite" else "ctid"  # the row's own address: not every table has a key
    where = ["creation_date <= :until"]
    params: dict[str, Any] = {"until": until_ms, "chunk": chunk}
    if from_ms is not None:
        where.append("creation_date >= :from_ms")
        params["from_ms"] = from_ms
    statement = text(f"DELETE FROM {table} WHERE {row} IN (SELECT {row} FROM {table} WHERE {' AND '.join(where)}"
                     f"{' AND event_type IN :types' if kind.event_types else ''} LIMIT :chunk)")
    if kind.event_types:
        statement = statement.bindparams(bindparam("types", expanding=True))
        params["types"] = list(kind.event_types)
    removed = 0
    while True:
        async with store.engine.begin() as conn:
            result = await conn.execute(statement, params)
        done = result.rowcount
        removed += done
        if removed_so_far is not None:
            removed_so_far(removed)
        if done < chunk:
            return removed
        await asyncio.sleep(0)  # let requests in between chunks


class PurgeJobs:
    """The purge jobs this node runs: ``start`` records a job and runs it in the background."""

    def __init__(self, store: Store, chunk: int = CHUNK) -> None:
        self.store = store
        self.chunk = chunk
        self._running: dict[str, tuple[asyncio.Task[None], dict[str, Any]]] = {}  # job id -> (task, body)

    async def start(self, purge: Purge) -> str:
        job_id = uuid.uuid4().hex
        body = {**purge.as_json(), "purged": {}}
        async with self.store.engine.begin() as conn:
            await conn.execute(insert(event_jobs).values(
                id=job_id, action="purge", status=IN_PROGRESS, creation_date=now_ms(), body=json.dumps(body)))
        task = asyncio.get_running_loop().create_task(self._run(job_id, purge, body), name=f"portico-purge-{job_id}")
        self._running[job_id] = (task, body)
        return job_id

    async def _run(self, job_id: str, purge: Purge, body: dict[str, Any]) -> None:
        purged: dict[str, int] = body["purged"]
        status = FAILED
        try:
            for event_type in purge.event_types:
                purged[event_type] = 0
                kind = STORED.get(event_type)
                if kind is not None:
                    await purge_kind(self.store, kind, purge.from_ms, purge.until_ms, self.chunk,
                                     functools.partial(purged.__setitem__, event_type))
            status = COMPLETED
        except asyncio.CancelledError:
            body["errorDetails"] = INTERRUPTED
            raise
        except Exception as exc:  # the store failed: the job says so, the node serves on
            log.exception("purge job %s failed", job_id)
            body["errorDetails"] = f"the purge failed: {exc.__class__.__name__}"
        finally:
            self._running.pop(job_id, None)
            body["completionDate"] = now_ms()
            with contextlib.suppress(Exception):  # a store down now leaves the job "In progress"
                await asyncio.shield(self._finish(job_id, status, body))

    async def _finish(self, job_id: str, status: str, body: dict[str, Any]) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(update(event_jobs).where(event_jobs.c.id == job_id)
                               .values(status=status, body=json.dumps(body)))

    async def wait(self) -> None:
        """Until the jobs running now have ended (tests, shutdown)."""
        if self._running:
            await asyncio.wait([task for task, _body in self._running.values()])

    async def close(self) -> None:
        """Stop the running jobs; each records what it removed and ends ``Failed``."""
        tasks = [task for task, _body in self._running.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for job_id, (_task, body) in list(self._running.items()):  # cancelled before it ever ran
            self._running.pop(job_id, None)
            body["errorDetails"] = INTERRUPTED
            with contextlib.suppress(Exception):
                await self._finish(job_id, FAILED, body)


def job_json(row: Any) -> dict[str, Any]:
    """A job as the management API answers it."""
    body = json.loads(row.body)
    return {"jobId": row.id, "action": row.action, "status": row.status, "creationDate": row.creation_date, **body}


async def find_job(store: Store, job_id: str) -> dict[str, Any] | None:
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(event_jobs).where(event_jobs.c.id == job_id))).first()
    return None if row is None else job_json(row)


async def list_jobs(store: Store, status: str | None = None, action: str | None = None) -> Sequence[dict[str, Any]]:
    """Jobs, newest first: those ``In progress`` unless ``status`` names another."""
    query = select(event_jobs).where(event_jobs.c.status == (status or IN_PROGRESS))
    if action:
        query = query.where(event_jobs.c.action == action)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query.order_by(event_jobs.c.creation_date.desc()).limit(1000))).all()
    return [job_json(row) for row in rows]
