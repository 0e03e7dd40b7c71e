"""Event rows into an embedded SQLite store, from the event loop's own thread.

The store's engine runs each statement in a driver thread (aiosqlite): a statement handed over,
the thread woken, the GIL passed back and forth, the answer handed back. For the event writer,
whose statements arrive all the time at gateway rates, that traffic cost more than SQLite's own
work: about 4 us per gateway call on top of 1 us of inserting (``benchmarks/cpu_cost.py``). This
sink keeps a connection of its own and runs the statements directly, one per turn of the loop
(a statement of 200 rows takes a fraction of a millisecond), so requests are served in between.

Nothing here may wait on the loop's thread:

- the connection's busy timeout is 0: when another connection holds the write lock, beginning
  fails at once and the sink retries on a later turn of the loop (up to ``lock_wait`` seconds, as
  long as other writers would wait through their busy timeout);
- it never checkpoints the WAL itself (a checkpoint writes and syncs the database file): every
  ``checkpoint_rows`` rows it has a passive checkpoint run in a worker thread, on a connection
  that lives there.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

_BUSY = ("database is locked", "database table is locked", "database is busy")


class SqliteLocked(Exception):
    """Another connection kept the write lock for longer than the sink waits."""


class SqliteEventSink:
    """Writes event transactions on one connection of its own (the loop's thread only)."""

    def __init__(self, path: str, lock_wait: float = 10.0, checkpoint_rows: int = 20_000) -> None:
        self.path = path
        self.lock_wait = lock_wait
        self.checkpoint_rows = checkpoint_rows
        self.checkpoints = 0  # passive checkpoints run (for tests and metrics)
        self._db: sqlite3.Connection | None = None
        self._since_checkpoint = 0
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()  # the worker thread's connection, one user at a time
        self._checkpoint_task: asyncio.Task[None] | None = None

    async def write(self, statements: Sequence[tuple[str, Sequence[Any], bool]], rows: int) -> None:
        """Run ``statements`` (sql, parameters, many) in one transaction; ``rows`` rows in all."""
        db = await self._begin()
        try:
            for sql, params, many in statements:
                if many:
                    db.executemany(sql, params)
                else:
                    db.execute(sql, params)
                await asyncio.sleep(0)  # requests run between the statements of a batch
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._since_checkpoint += rows
        if self._since_checkpoint >= self.checkpoint_rows:
            self._since_checkpoint = 0
            self._start_checkpoint()

    async def _begin(self) -> sqlite3.Connection:
        db = self._connection()
        deadline = time.monotonic() + self.lock_wait
        pause = 0.002
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return db
            except sqlite3.OperationalError as exc:
                if not any(marker in str(exc).lower() for marker in _BUSY):
                    raise
                if time.monotonic() >= deadline:
                    raise SqliteLocked(f"the event store stayed locked for {self.lock_wait:g} s") from exc
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=0")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")  # see the module's docstring
            self._db = db
        return self._db

    def _start_checkpoint(self) -> None:
        if self._checkpoint_task is None or self._checkpoint_task.done():
            self._checkpoint_task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._checkpoint))

    def _checkpoint(self) -> None:
        with self._checkpoint_lock:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._checkpointer.execute("PRAGMA busy_timeout=1000")
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1

    async def close(self) -> None:
        task, self._checkpoint_task = self._checkpoint_task, None
        if task is not None:
            await asyncio.wait([task])  # a checkpoint under way finishes (it is bounded by its busy timeout)
        if self._db is not None:
            self._db.close()
            self._db = None
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None

