"""Writes monitor events to the ``gateway_events`` table off the request path.

One writer per process (a gateway service); ``emit`` never blocks: rows are queued and a task
inserts them. A failing store is logged and the batch dropped: alerting must not hurt calls."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from portico.store.tables import gateway_events

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange
    from portico.gateway.snapshot import Services
    from portico.store import Store

log = logging.getLogger("portico.monitor")
MAX_PENDING = 10_000


class MonitorEventWriter:
    def __init__(self, store: Store | None) -> None:
        self.store = store
        self.pending: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

    def emit(self, body: dict[str, Any]) -> None:
        if self.store is None or len(self.pending) >= MAX_PENDING:
            log.warning("monitor event dropped: %s", body)
            return
        now = int(time.time() * 1000)
        body = {**body, "creationDate": now}
        self.pending.append({
            "id": str(uuid.uuid4()), "event_type": "Monitor", "creation_date": now, "api_id": body.get("apiId"),
            "application_id": body.get("applicationId"), "body": json.dumps(body),
        })
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        while self.pending and self.store is not None:
            rows, self.pending = self.pending, []
            try:
                async with self.store.engine.begin() as conn:
                    await conn.execute(insert(gateway_events), rows)
            except Exception:  # the store may be down; monitoring must not break anything
                log.exception("writing %d monitor events failed", len(rows))

    async def close(self) -> None:
        if self.task is not None:
            await self.task
        await self.flush()


def _create(services: Services) -> MonitorEventWriter:
    writer = MonitorEventWriter(services.options.get("store"))
    services.closers.append(writer.close)
    return writer


def writer_for(ex: Exchange) -> MonitorEventWriter:
    writer: MonitorEventWriter = ex.snapshot.services.get_or_create("monitorEvents", _create)
    return writer
