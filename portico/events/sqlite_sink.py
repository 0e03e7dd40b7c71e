"""The event writer's SQLite inserts, on a connection and a thread of their own.

Through the store's engine every statement of a batch was a hand-over to the driver's thread and
back, and its thread competed with the event loop for the one core the gateway runs on: measured
with ``benchmarks/cpu_cost.py``, a written event cost about four times SQLite's own work. Here a
whole batch is one hand-over, and the thread runs under ``SCHED_BATCH`` (Linux): the scheduler does
not let it preempt the event loop when it wakes, so requests are not cut short by a batch, while
the thread still gets its fair share of the CPU (the queue never starves).

The connection is opened on first use and set up as the store's are (``prepare_sqlite_connection``):
while another writer of the store (this process's management API, another process) holds SQLite's
write lock, a batch waits for it through the busy timeout, here, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain

from portico.events.calls import EventRow
from portico.store.db import prepare_sqlite_connection
from portico.store.tables import EVENT_COLUMNS, SUBJECT_COLUMNS, SUBJECT_VALUES_OF_S

log = logging.getLogger(__name__)

ROW_WIDTH = 7  # values bound per event (calls.EventRow)

# The columns of an event row, in the table's order, from the bound values (v.column1 .. v.column7,
# calls.EventRow) and its subject (s): the subject's seven values are copied by the database.
_SELECTED = (
    f"v.column1, v.column2, {SUBJECT_VALUES_OF_S}, CASE v.column4 WHEN 0 THEN 'SUCCESS' ELSE 'FAILURE' END, "
    "v.column5, CASE v.column6 WHEN 0 THEN v.column1 ELSE NULLIF(v.column6, '') END, v.column7"
)

SUBJECT_SQL = (f"INSERT OR IGNORE INTO event_subjects (key, {', '.join(SUBJECT_COLUMNS)}) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

# Rows per INSERT statement. sqlite3 releases the GIL around each statement's execution: with
# executemany that is once per row, and whenever the event loop is busy each release is a thread
# switch, which cost as much as the insert itself. 7 values x 200 rows = 1,400 parameters, under
# the 32,766 of SQLite 3.32+ (142 rows for older ones, limited to 999).
ROWS_PER_STATEMENT = 200 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999 // ROW_WIDTH


@functools.cache
def multi_row_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (f"INSERT INTO transaction_events ({EVENT_COLUMNS}) SELECT {_SELECTED} "
            f"FROM (VALUES {values}) AS v LEFT JOIN event_subjects AS s ON s.key = v.column3")


def statement_sizes(n: int) -> list[int]:
    """Rows per statement for a batch of ``n``: full statements, then powers of two for the rest.
    A handful of distinct statements stay prepared in the connection's cache; a statement for
    every remainder (a batch cut by the flush interval has any size) was parsed anew each time."""
    full, rest = divmod(n, ROWS_PER_STATEMENT)
    sizes = [ROWS_PER_STATEMENT] * full
    bit = 1 << max(rest.bit_length() - 1, 0)
    while rest:
        if rest & bit:
            sizes.append(bit)
            rest -= bit
        bit >>= 1
    return sizes


def _yield_to_the_loop() -> None:
    """The writer thread's start: wakeups of its own do not preempt the event loop (Linux)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


class SqliteEventSink:
    """Writes batches of event rows (and the subjects new since the last batch) to the SQLite file
    at ``path``, each batch in one transaction, from one thread of its own."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None  # used and closed in the executor's thread only

    async def write(self, subjects: Sequence[Sequence[object]], rows: list[EventRow]) -> None:
        """Insert ``subjects`` (rows of ``event_subjects``, ignored when present) and ``rows`` in one
        transaction; on any error nothing of it stays and the error is raised here."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, "portico-events", initializer=_yield_to_the_loop)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, subjects, rows)

    def close(self) -> None:
        """Close the connection after the writes already handed over, without waiting for them."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.submit(self._close_db)
            executor.shutdown(wait=False)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path)
            try:
                prepare_sqlite_connection(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _write(self, subjects: Sequence[Sequence[object]], rows: list[EventRow]) -> None:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            if subjects:
                db.executemany(SUBJECT_SQL, subjects)
            start = 0
            for size in statement_sizes(len(rows)):
                db.execute(multi_row_sql(size), tuple(chain.from_iterable(rows[start : start + size])))
                start += size
            db.execute("COMMIT")
        except BaseException:
            self._roll_back(db)
            raise

    def _roll_back(self, db: sqlite3.Connection) -> None:
        if not db.in_transaction:
            return
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:  # the connection is broken: the next batch opens a new one
            log.warning("cannot roll back a failed event batch; reopening the connection", exc_info=True)
            self._close_db()

    def _close_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
