"""Read queries under a time limit: a statement past it stops with QueryTooSlow, on both stores, and the
pooled connection is fine afterwards."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from portico.store import Store
from portico.store.time_limit import QueryTooSlow, limited_connection

# Seconds of work on either engine: SQLite counts through a recursive CTE, PostgreSQL sleeps.
_SLOW = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
              "SELECT count(*) FROM n",
    "postgresql": "SELECT pg_sleep(5)",
}


async def test_a_statement_past_the_limit_stops(store: Store) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTooSlow):
        async with limited_connection(store, 0.3) as conn:
            await conn.execute(text(_SLOW[store.backend]))
    assert time.monotonic() - started < 2.5
    async with limited_connection(store, 5.0) as conn:  # a quick one answers
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    async with store.read_engine.connect() as conn:  # no limit left on pooled connections
        assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2


async def test_the_match_function_shares_the_deadline(store: Store) -> None:
    if store.backend != "sqlite":
        pytest.skip("PostgreSQL matches with its own engine under statement_timeout")
    async with limited_connection(store, 5.0, match="m") as conn:
        assert (await conn.execute(text("SELECT m('abab', '(ab)+'), m('abc', '(ab)+')"))).one() == (1, 0)
    with pytest.raises(QueryTooSlow):
        async with limited_connection(store, 0.3, match="m") as conn:
            await conn.execute(text(r"SELECT m(:v, '(.*)(.*)(.*)(.*)(.*)\5\4\3\2\1')"), {"v": "ab" * 120})
