"""The SQLite event sink: batches written on a connection and thread of their own."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator

import pytest

from portico.events import EventRecorder, TransactionEvent
from portico.events.sqlite_sink import SqliteEventSink
from portico.store import Store


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    store = Store(sqlite_url)
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


def rows_in(path: str, table: str = "transaction_events") -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def first_write_thread(sink: SqliteEventSink) -> threading.Thread:
    """Make ``sink``'s first write and return the thread it started. Other tests' sinks (a live
    server kept for a module, say) may have writer threads of the same name running."""
    before = set(threading.enumerate())
    await sink.write([], [])
    (writer,) = (t for t in set(threading.enumerate()) - before if t.name.startswith("portico-events"))
    return writer


def event(n: int) -> TransactionEvent:
    return TransactionEvent(api_id="api-1", api_name="PetStore", application_id=f"app-{n % 3}")


async def test_a_batch_waits_for_another_writers_lock_without_holding_up_the_loop(sqlite_store: Store) -> None:
    path = sqlite_store.database_path
    recorder = EventRecorder(sqlite_store)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction
    try:
        for n in range(300):
            recorder.record(event(n))
        flushing = asyncio.create_task(recorder.flush())
        ticks = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.4:  # the loop keeps turning while the batch waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not flushing.done() and ticks >= 20
        other.execute("COMMIT")
        await asyncio.wait_for(flushing, 10)
    finally:
        other.close()
        await recorder.close()
    assert (recorder.written, recorder.failed) == (300, 0)
    assert rows_in(path) == 300
    assert rows_in(path, "event_subjects") == 3


async def test_a_failed_batch_leaves_nothing_behind_and_the_next_one_is_written(sqlite_store: Store) -> None:
    path = sqlite_store.database_path
    sink = SqliteEventSink(path)
    subject = (1, "api-1", "PetStore", "1.0", None, None, None, None)
    good = ("e-1", 1, 1, 0, 200, 0, "[]")
    bad = ("e-2", 2, 1, 0, 200, 0)  # one value short: the statement fails after the subject went in
    try:
        with pytest.raises(sqlite3.ProgrammingError):
            await sink.write([subject], [good, bad])  # type: ignore[list-item]
        assert (rows_in(path), rows_in(path, "event_subjects")) == (0, 0)  # rolled back whole
        await sink.write([subject], [good])
        assert (rows_in(path), rows_in(path, "event_subjects")) == (1, 1)
    finally:
        sink.close()


async def test_close_lets_handed_over_writes_finish_and_a_later_write_reopens(sqlite_store: Store) -> None:
    path = sqlite_store.database_path
    sink = SqliteEventSink(path)
    subject = (1, "api-1", "PetStore", "1.0", None, None, None, None)
    writer = await first_write_thread(sink)
    await sink.write([subject], [("e-1", 1, 1, 0, 200, 0, "[]")])
    sink.close()
    writer.join(10)
    assert not writer.is_alive()  # its thread ended, with the connection closed in it
    await sink.write([], [("e-2", 2, 1, 1, 500, "c-1", "[]")])
    sink.close()
    assert rows_in(path) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_BATCH is Linux's")
async def test_the_writer_thread_does_not_preempt_the_event_loop(sqlite_store: Store) -> None:
    sink = SqliteEventSink(sqlite_store.database_path)
    try:
        writer = await first_write_thread(sink)
        assert writer.native_id is not None
        assert os.sched_getscheduler(writer.native_id) == os.SCHED_BATCH
        assert os.sched_getscheduler(0) != os.SCHED_BATCH  # the loop's own thread is left as it was
    finally:
        sink.close()
