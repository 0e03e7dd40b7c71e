"""The SQLite event sink on the loop's thread: never blocking the loop on another writer's lock,
checkpointing the WAL off the loop, and the recorder's use of it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from portico.events import EventRecorder, TransactionEvent
from portico.events.recorder import _sqlite_file
from portico.events.sqlite_sink import SqliteEventSink, SqliteLocked
from portico.store import Store


async def _max_loop_lag(stop: asyncio.Event) -> float:
    """The longest the loop took to come back to a task sleeping 1 ms, until ``stop``."""
    worst = 0.0
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.001)
        worst = max(worst, time.monotonic() - before)
    return worst


def _hold_write_lock(path: str) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_another_writer_s_lock_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'portico.db'}")
    await store.migrate()
    recorder = EventRecorder(store)
    try:
        other = _hold_write_lock(str(tmp_path / "portico.db"))
        for n in range(3):
            recorder.record(TransactionEvent(api_id="api-1", api_name=f"Api{n}"))
        stop = asyncio.Event()
        lag = asyncio.create_task(_max_loop_lag(stop))
        flush = asyncio.create_task(recorder.flush())
        await asyncio.sleep(0.5)
        assert not flush.done() and recorder.written == 0  # waiting for the lock, the loop running
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(flush, 5)
        stop.set()
        assert await lag < 0.2
        assert (recorder.written, recorder.failed) == (3, 0)
    finally:
        await recorder.close()
        await store.close()


async def test_a_lock_held_too_long_fails_the_attempt(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    sqlite3.connect(path).execute("CREATE TABLE t (x INTEGER)").connection.close()
    sink = SqliteEventSink(path, lock_wait=0.2)
    other = _hold_write_lock(path)
    try:
        started = time.monotonic()
        with pytest.raises(SqliteLocked):
            await sink.write([("INSERT INTO t VALUES (?)", (1,), False)], 1)
        assert 0.2 <= time.monotonic() - started < 2
    finally:
        other.execute("ROLLBACK")
        other.close()
    await sink.write([("INSERT INTO t VALUES (?)", (1,), False)], 1)  # free again: written
    await sink.close()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (1,)


async def test_a_failed_statement_rolls_the_whole_transaction_back(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    sqlite3.connect(path).execute("CREATE TABLE t (x INTEGER NOT NULL)").connection.close()
    sink = SqliteEventSink(path)
    with pytest.raises(sqlite3.IntegrityError):
        await sink.write([("INSERT INTO t VALUES (?)", (1,), False), ("INSERT INTO t VALUES (?)", (None,), False)], 2)
    await sink.write([("INSERT INTO t VALUES (?)", [(2,), (3,)], True)], 2)
    await sink.close()
    assert sqlite3.connect(path).execute("SELECT x FROM t ORDER BY x").fetchall() == [(2,), (3,)]


def _size(path: str) -> int:
    return Path(path).stat().st_size


async def _wal_size_after_writes(path: str, checkpoint_rows: int) -> tuple[int, int]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x TEXT)")
    db.close()
    sink = SqliteEventSink(path, checkpoint_rows=checkpoint_rows)
    rows = [("x" * 400,)] * 500
    for _ in range(12):
        done = sink.checkpoints
        await sink.write([("INSERT INTO t VALUES (?)", rows, True)], len(rows))
        if checkpoint_rows <= len(rows):
            for _ in range(200):  # the checkpoint runs in a worker thread
                if sink.checkpoints > done:
                    break
                await asyncio.sleep(0.01)
    size = _size(path + "-wal")
    await sink.close()
    return size, sink.checkpoints


async def test_the_wal_is_checkpointed_off_the_loop_and_stays_small(tmp_path: Path) -> None:
    unchecked, none = await _wal_size_after_writes(str(tmp_path / "a.db"), checkpoint_rows=10**9)
    checked, runs = await _wal_size_after_writes(str(tmp_path / "b.db"), checkpoint_rows=500)
    assert none == 0 and runs >= 10
    assert checked < unchecked / 3, (checked, unchecked)


def test_only_sqlite_files_get_the_sink(tmp_path: Path) -> None:
    assert _sqlite_file(Store(f"sqlite:///{tmp_path / 'p.db'}")) == str(tmp_path / "p.db")
    assert _sqlite_file(Store("postgresql://postgres@127.0.0.1:5432/nothing")) is None
