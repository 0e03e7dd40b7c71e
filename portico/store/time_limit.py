"""Read queries under a time limit, on both backends.

Reporting queries (the audit log, transaction events) take user input that can make a statement run
for a very long time: a regular expression that backtracks exponentially, or a filter that scans a
years-wide time range. :func:`limited_connection` gives a read connection whose statements stop
after ``seconds``, and turns that into :class:`QueryTooSlow`, which the management API answers with
a 400 saying how to narrow the query.

- PostgreSQL: ``SET LOCAL statement_timeout`` for the connection's transaction.
- SQLite: a progress handler that aborts the running statement past the deadline and, when asked
  for, a regular-expression function on the ``regex`` engine with the same deadline (``match``:
  its SQL name). SQLAlchemy's own ``regexp`` on SQLite is Python's ``re``, which holds the
  interpreter for a whole match and cannot be stopped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import regex
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from portico.store.db import Store

# SQLite calls the progress handler every this many virtual-machine instructions (~ms).
_PROGRESS_STEPS = 10_000


class QueryTooSlow(Exception):
    """A statement ran past its time limit."""


class _Deadline:
    """One statement's deadline on SQLite: the progress handler and the match function share it."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.timed_out = False
        self._compiled: dict[str, Any] = {}

    def progress(self) -> int:
        if time.monotonic() >= self.deadline:
            self.timed_out = True
            return 1  # non-zero: SQLite interrupts the statement
        return 0

    def match(self, value: Any, pattern: str) -> int | None:
        """``match(value, pattern)``: 1 when the whole value matches, by the ``regex`` engine."""
        if value is None:
            return None
        compiled = self._compiled.get(pattern)
        if compiled is None:
            compiled = self._compiled[pattern] = regex.compile(pattern)
        remaining = self.deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            return 1 if compiled.fullmatch(str(value), timeout=remaining) else 0
        except TimeoutError:
            self.timed_out = True
            raise


def _statement_cancelled(exc: DBAPIError) -> bool:
    """PostgreSQL's answer to a statement past ``statement_timeout`` (SQLSTATE 57014)."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code == "57014" or "statement timeout" in str(exc)


@asynccontextmanager
async def limited_connection(store: Store, seconds: float, match: str | None = None) -> AsyncIterator[AsyncConnection]:
    """A read connection whose statements stop after ``seconds`` (:class:`QueryTooSlow`). With
    ``match``, SQLite gets the function ``match(value, pattern)`` under that name (a full match)."""
    async with store.read_engine.connect() as conn:
        deadline: _Deadline | None = None
        raw_sqlite: Any = None
        if store.backend == "sqlite":
            deadline = _Deadline(seconds)
            raw_sqlite = (await conn.get_raw_connection()).driver_connection
            if match is not None:
                await raw_sqlite.create_function(match, 2, deadline.match)
            await raw_sqlite.set_progress_handler(deadline.progress, _PROGRESS_STEPS)
        else:
            await conn.execute(text(f"SET LOCAL statement_timeout = {max(int(seconds * 1000), 1)}"))
        try:
            yield conn
        except DBAPIError as exc:
            if (deadline is not None and deadline.timed_out) or (deadline is None and _statement_cancelled(exc)):
                raise QueryTooSlow(f"the query took longer than {seconds:g} s") from None
            raise
        finally:
            if raw_sqlite is not None:  # the connection goes back to the pool
                await raw_sqlite.set_progress_handler(None, 0)
