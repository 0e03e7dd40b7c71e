"""Policy-violation alerts (``gateway_events`` rows of type ``PolicyViolation``), written in the
background: ``record`` only appends to a bounded queue, so a slow database never slows the
request that breached a limit; a full queue sheds alerts."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import insert

from portico.store.tables import gateway_events
from portico.tasks import stop_task

if TYPE_CHECKING:
    from portico.gateway.snapshot import Services
    from portico.store import Store

log = logging.getLogger("portico.events")
MAX_PENDING = 10_000
FLUSH_INTERVAL = 0.2


class ViolationLog:
    def __init__(self, store: Store | None) -> None:
        self._store = store
        self._queue: deque[dict[str, Any]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def record(self, event_type: str, api_id: str | None, application_id: str | None, body: dict[str, Any]) -> None:
        if self._store is None:
            return
        if len(self._queue) >= MAX_PENDING:
            self.dropped += 1
            return
        now = int(time.time() * 1000)
        event_id = uuid.uuid4().hex
        full = {"id": event_id, "eventType": event_type, "creationDate": now, "apiId": api_id,
                "applicationId": application_id, **body}
        self._queue.append({
            "id": event_id, "event_type": event_type, "creation_date": now, "api_id": api_id,
            "application_id": application_id, "body": orjson.dumps(full, default=str).decode(),
        })
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL)
        await self.flush()

    async def flush(self) -> None:
        while self._queue and self._store is not None:
            rows = [self._queue.popleft() for _ in range(min(len(self._queue), 500))]
            try:
                async with self._store.transaction() as tx:
                    await tx.connection.execute(insert(gateway_events), rows)
            except Exception:  # alerts must never break traffic; they are lost instead
                log.exception("writing %d policy-violation events failed", len(rows))

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        await self.flush()


def _create(services: Services) -> ViolationLog:
    violations = ViolationLog(services.options.get("store"))
    services.closers.append(violations.close)
    return violations


def violations_of(services: Services) -> ViolationLog:
    """The process-wide violation log (created on first use, flushed when services close)."""
    found: ViolationLog = services.get_or_create("violation_log", _create)
    return found
