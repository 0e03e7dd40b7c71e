"""Quota survival (``pgmen.quotaSurvival.interval``): quota counts are saved to the
``quota_counters`` table every interval and on shutdown, and restored when a node starts,
so a restart does not hand every subscriber a fresh quota.

When the counter store (Redis) is unreachable at start the node starts anyway (calls follow
``rateLimitFailOpen``) and the restore is retried every few seconds; nothing is saved before it
succeeds. When the store restarts (``Counters.incarnation`` changes: a Redis without persistence
comes back empty), the saved counts are restored again within a few seconds, without restarting
the node (restoring keeps a higher live count, so it is harmless when nothing was lost)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portico.counters import Counters, CounterUnavailable, Window
from portico.store.tables import quota_counters
from portico.tasks import stop_task

if TYPE_CHECKING:
    from portico.store import Store

log = logging.getLogger("portico.counters")

# Seconds between attempts to restore saved counts while the counter store is unreachable.
RESTORE_RETRY_S = 2.0


class QuotaSurvival:
    def __init__(self, store: Store, counters: Counters, prefix: str, interval: float) -> None:
        self.store, self.counters, self.prefix, self.interval = store, counters, prefix, interval
        self._task: asyncio.Task[None] | None = None
        self.restored = False
        self._incarnation = ""  # of the counter store the saved counts were last restored into
        self._postponed = False

    async def restore(self) -> int:
        """Load saved counts of windows that have not ended; returns how many (0 when the
        counter store is unreachable: ``restored`` stays false and the saver retries)."""
        now = int(time.time() * 1000)
        async with self.store.read() as tx:
            rows = (await tx.connection.execute(
                select(quota_counters).where(quota_counters.c.window_end > now)
            )).all()
        try:
            incarnation = await self.counters.incarnation()
            for row in rows:
                m = row._mapping
                await self.counters.put(m["key"], Window(m["window_start"], m["window_end"]), m["count"])
        except CounterUnavailable as exc:
            if not self._postponed:  # once per outage; the saver retries every few seconds
                log.warning("restoring saved quota counters postponed, the counter store is unavailable: %s", exc)
            self._postponed = True
            return 0
        self.restored, self._incarnation, self._postponed = True, incarnation, False
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
                await conn.execute(self._upsert(conn.dialect.name), rows)

    @staticmethod
    def _upsert(dialect: str) -> Any:
        """Insert or update by key, as one statement: nodes sharing the database save at the same
        time without a duplicate-key failure (a delete-then-insert races), and with no
        parameter-count limit on the number of keys. A row of a later window replaces the stored
        one; within one window the higher count stays (each node saves what it has counted)."""
        stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(quota_counters)
        new, old = stmt.excluded, quota_counters.c
        return stmt.on_conflict_do_update(
            index_elements=[old.key],
            set_={"window_start": new.window_start, "window_end": new.window_end, "updated_at": new.updated_at,
                  "count": case((new.window_start > old.window_start, new.count),
                                (new.count > old.count, new.count), else_=old.count)},
            where=new.window_start >= old.window_start,
        )

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _restore_then_save(self, save: bool = True) -> None:
        if self.restored and await self.counters.incarnation() != self._incarnation:
            log.warning("the counter store restarted; restoring saved quota counters")
            self.restored = False
        if not self.restored:
            await self.restore()
        if self.restored and save:
            await self.save()

    async def _run(self) -> None:
        last_save = time.monotonic()
        while True:
            # Wake often enough to restore soon after the store comes back; save every interval.
            await asyncio.sleep(min(self.interval, RESTORE_RETRY_S))
            due = time.monotonic() - last_save >= self.interval
            try:
                await self._restore_then_save(due)
            except CounterUnavailable as exc:  # retried at the next wake-up; traffic goes on
                if due:  # (the store logs its outages itself: once per interval here is enough)
                    log.warning("saving quota counters failed, the counter store is unavailable: %s", exc)
            except Exception:
                log.exception("saving quota counters failed")
            if due:
                last_save = time.monotonic()

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        try:
            await self._restore_then_save()
        except CounterUnavailable as exc:
            log.warning("saving quota counters at shutdown failed, the counter store is unavailable: %s", exc)
        except Exception:
            log.exception("saving quota counters at shutdown failed")
