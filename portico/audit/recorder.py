"""The audit sink of a running node: a bounded queue drained in batches by one background task.

:meth:`AuditRecorder.record` only turns the entry into a row (stamping time, id, area and this
machine) and appends it: a slow or broken database must never delay or fail the management call
being recorded. The writer reads the area selection (``auditlogDestinationConfig``) once per batch,
so a change made on any node applies to entries written after it, and inserts the selected rows in
one transaction on the store's connection directly: audit rows are not configuration and do not
move the configuration revision. A batch the store rejects is retried with exponential backoff and
then dropped, counted in ``failed`` and logged."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
from collections import deque
from typing import Any

from sqlalchemy import insert

from portico.audit import AuditEntry
from portico.audit.areas import area_of, load_enabled_areas
from portico.store import Store, StoreTransaction
from portico.store.tables import audit_log
from portico.tasks import stop_task, wait_event

log = logging.getLogger(__name__)

# Column widths of audit_log; longer values are cut rather than failing the batch.
_LIMITS = {"object_type": 64, "action": 64, "object": 512, "user": 256, "client_ip": 64, "message": 4000}
DROP_WARNING_INTERVAL = 5.0


# Ids sort like the entries were recorded: creation time, then a per-process sequence (several
# entries share a millisecond), then a random per-process suffix that keeps nodes apart.
_SEQUENCE = itertools.count()
_PROCESS = os.urandom(4).hex()


def audit_row(entry: AuditEntry, source_machine: str, now_ms: int | None = None) -> dict[str, Any]:
    """The ``audit_log`` row of ``entry``; ``event_type`` is the entry's management area."""
    created = now_ms if now_ms is not None else int(time.time() * 1000)
    row: dict[str, Any] = {
        "id": f"{created:013x}{next(_SEQUENCE) % 0x1000000:06x}{_PROCESS}",
        "event_type": area_of(entry.object_type),
        "creation_date": created,
        "object_type": entry.object_type,
        "action": entry.action,
        "object": entry.object,
        "message": entry.message,
        "user": entry.user,
        "source_machine": source_machine,
        "client_ip": entry.client_ip,
    }
    for column, limit in _LIMITS.items():
        value = row[column]
        row[column] = value[:limit] if isinstance(value, str) else str(value or "")[:limit]
    return row


class AuditRecorder:
    """Queues audit entries and writes them to ``audit_log`` in the background.

    Counters: ``recorded`` entries accepted, ``written`` rows committed, ``skipped`` entries of areas
    not selected for recording, ``dropped`` entries refused (queue full, or closed), ``failed``
    entries lost because the store kept rejecting their batch. Call ``record`` from the event loop's
    thread."""

    def __init__(
        self,
        store: Store,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        max_attempts: int = 4,
        retry_backoff: float = 0.2,
    ) -> None:
        self.store = store
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.source_machine = socket.gethostname()
        self.recorded = self.written = self.skipped = self.dropped = self.failed = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._wakeup = asyncio.Event()
        self._write_lock = asyncio.Lock()  # flush() waits for a batch the loop has already taken
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_drop_warning = float("-inf")

    @property
    def pending(self) -> int:
        return len(self._queue)

    def record(self, entry: AuditEntry) -> None:
        """Queue ``entry``; never blocks, never raises."""
        try:
            if self._closed or len(self._queue) >= self.max_queue:
                self._count_drop()
                return
            self._queue.append(audit_row(entry, self.source_machine))
            self.recorded += 1
            if len(self._queue) >= self.batch_size:
                self._wakeup.set()
        except Exception:  # recording must never fail the recorded action
            self.failed += 1
            log.exception("cannot queue an audit entry")

    def _count_drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_warning >= DROP_WARNING_INTERVAL:
            log.warning("audit queue full or closed: dropped an audit entry (%d in total)", self.dropped)
            self._last_drop_warning = now

    def start(self) -> None:
        """Start the background writer; call from within the running event loop."""
        if self._task is None or self._task.done():
            self._closed = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="portico-audit-writer")

    async def flush(self) -> None:
        """Write everything queued so far (batches the store rejects end in ``failed``)."""
        async with self._write_lock:
            while self._queue:
                await self._write_batch(self._take_batch())

    # ASYNC109: the timeout is the shutdown budget the caller hands over.
    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stop accepting entries, write what is queued within ``timeout`` seconds, stop the writer."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout)
        task, self._task = self._task, None
        await stop_task(task)
        if self._queue:
            self.dropped += len(self._queue)
            log.warning("audit recorder closed with %d unwritten entries", len(self._queue))
            self._queue.clear()

    async def _run(self) -> None:
        while True:
            await wait_event(self._wakeup, self.flush_interval)
            self._wakeup.clear()
            try:
                while self._queue:
                    async with self._write_lock:
                        if self._queue:
                            await self._write_batch(self._take_batch())
            except Exception:  # a bug here must not silently stop auditing
                log.exception("audit writer failed; continuing")

    def _take_batch(self) -> list[dict[str, Any]]:
        return [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]

    async def _write_batch(self, rows: list[dict[str, Any]]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                written = await self._insert(rows)
            except asyncio.CancelledError:
                self.dropped += len(rows)  # close() gave up waiting for this batch
                raise
            except Exception as exc:  # connection lost, table missing, ...
                if attempt == self.max_attempts:
                    self.failed += len(rows)
                    log.error("dropping %d audit entries after %d failed attempts: %s", len(rows), attempt, exc)
                    return
                log.warning("writing %d audit entries failed (attempt %d): %s", len(rows), attempt, exc)
                await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1))
            else:
                self.written += written
                self.skipped += len(rows) - written
                return

    async def _insert(self, rows: list[dict[str, Any]]) -> int:
        async with self.store.engine.begin() as conn:
            # The selection is read in the writing transaction: one small read per batch.
            enabled = await load_enabled_areas(StoreTransaction(conn))
            selected = [r for r in rows if r["event_type"] in enabled]
            if selected:
                await conn.execute(insert(audit_log), selected)
        return len(selected)
