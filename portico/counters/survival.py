"""Quota survival (``pgmen.quotaSurvival.interval``): quota counts are saved to the
``quota_counters`` table every interval and on shutdown, and restored when a node starts,
so a restart does not hand every subscriber a fresh quota."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select

from portico.counters import Counters, Window
from portico.store.tables import quota_counters
from portico.tasks import stop_task

if TYPE_CHECKING:
    from portico.store import Store

log = logging.getLogger("portico.counters")


class QuotaSurvival:
    def __init__(self, store: Store, counters: Counters, prefix: str, interval: float) -> None:
        self.store, self.counters, self.prefix, self.interval = store, counters, prefix, interval
        self._task: asyncio.Task[None] | None = None

    async def restore(self) -> int:
        """Load saved counts of windows that have not ended; returns how many."""
        now = int(time.time() * 1000)
        async with self.store.read() as tx:
            rows = (await tx.connection.execute(
                select(quota_counters).where(quota_counters.c.window_end > now)
            )).all()
        for row in rows:
            m = row._mapping
            await self.counters.put(m["key"], Window(m["window_start"], m["window_end"]), m["count"])
        return len(rows)

    async def save(self) -> None:
        live = await self.counters.snapshot(self.prefix)
        now = int(time.time() * 1000)
        rows = [{"key": k[:256], "window_start": w.start_ms, "window_end": w.end_ms, "count": c, "updated_at": now}
                for k, w, c in live if w.end_ms > now]
        async with self.store.transaction() as tx:
            conn = tx.connection
            await conn.execute(delete(quota_counters).where(quota_counters.c.window_end <= now))
            if rows:
                await conn.execute(delete(quota_counters).where(quota_counters.c.key.in_([r["key"] for r in rows])))
                await conn.execute(insert(quota_counters), rows)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.save()
            except Exception:  # a failed save is retried next interval; traffic goes on
                log.exception("saving quota counters failed")

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        try:
            await self.save()
        except Exception:
            log.exception("saving quota counters at shutdown failed")
