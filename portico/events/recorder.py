"""Bounded, non-blocking event recording with a background batch writer.

The gateway calls :meth:`EventRecorder.record` once per request. That call only
appends to an in-memory queue: a slow or broken database must never slow down
or fail API traffic, so events are shed (and counted) instead. A single
background task drains the queue in batches, each written in one transaction
(on SQLite by ``sqlite_sink``, on a connection and thread of its own).

Batches are large (up to ``batch_size`` events, or whatever a ``flush_interval``
gathered): an insert's cost is mostly the index pages it dirties, and a bigger
transaction dirties each page once for many rows (about a third less CPU per
event at 5,000 than at 500, with a thousand applications interleaved in the
``application_id`` index). Rows are built on the event loop a slice at a time
so that a big batch never holds up requests for more than a fraction of a
millisecond.

A row binds seven values; the event's API, application, package and plan are copied by
the insert from ``event_subjects``, where each combination is stored once (binding a text
value costs SQLite about as much as storing it). Measured with ``cpu_cost.py``, the insert
was half of an event's cost, and an event about a fifth of a proxied call's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from itertools import islice

import orjson

from portico.events.calls import CallQueue, CallRecord, EventRow, Subject, key_of, rows_of
from portico.events.model import TransactionEvent
from portico.events.sqlite_sink import SqliteEventSink
from portico.store import Store
from portico.store.tables import EVENT_COLUMNS, SUBJECT_COLUMNS, SUBJECT_VALUES_OF_S
from portico.tasks import stop_task, wait_event

log = logging.getLogger(__name__)

# How often at most the "queue full" warning is logged; a saturated gateway
# would otherwise write one log line per request.
DROP_WARNING_INTERVAL = 5.0
# Rows built per turn of the event loop (~5 us each).
ROWS_PER_SLICE = 100


def event_row(event: TransactionEvent, keys: dict[Subject, int]) -> EventRow:
    """The row of one event (as ``calls.call_row`` makes them), its body the wire form; its subject
    is noted in ``keys``."""
    # default=str: a header value or custom field that is not JSON-native must
    # not make the whole batch fail.
    body = orjson.dumps(event.to_json(), default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    subject = (
        event.api_id or "", event.api_name or "", event.api_version or "", event.application_id or "",
        event.application_name or "", event.package_id or "", event.plan_id or "",
    )
    correlation: str | int = 0 if event.correlation_id == event.id else event.correlation_id or ""
    failed = 0 if event.status == "SUCCESS" else 1
    return (event.id, event.creation_date, key_of(keys, subject), failed, event.response_code, correlation, body)


# PostgreSQL's statement, executed per row (asyncpg batches them); its parameters are a row's values
# with the correlation id resolved (``_pg_params``), typed: the select list does not take the types
# of the columns it fills.
_PG_INSERT_SQL = (
    f"INSERT INTO transaction_events ({EVENT_COLUMNS}) SELECT $1::varchar, $2::bigint, {SUBJECT_VALUES_OF_S}, "
    "CASE $4::int WHEN 0 THEN 'SUCCESS' ELSE 'FAILURE' END, $5::int, $6::varchar, $7::text "
    "FROM event_subjects AS s WHERE s.key = $3::bigint"
)
_PG_SUBJECT_SQL = (f"INSERT INTO event_subjects (key, {', '.join(SUBJECT_COLUMNS)}) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING")


def _pg_params(row: EventRow) -> tuple[object, ...]:
    correlation = row[5]
    return (*row[:5], row[0] if correlation == 0 else correlation or None, row[6])


class EventRecorder:
    """Queues events and writes them to the store in the background.

    Counters (read them for health/metrics): ``recorded`` events accepted,
    ``written`` events committed, ``dropped`` events refused because the queue
    was full or the recorder closed, ``failed`` events lost because the store
    kept rejecting their batch. ``record`` must be called from the event loop's
    thread (it is not thread-safe)."""

    def __init__(
        self,
        store: Store,
        max_queue: int = 50_000,
        batch_size: int = 5_000,
        flush_interval: float = 1.0,
        max_attempts: int = 4,
        retry_backoff: float = 0.2,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._wakeup = asyncio.Event()
        # The gateway appends its call records here itself (``calls.append``), without ``record``.
        self.calls = CallQueue(max_queue, batch_size, self._wakeup.set, self._count_drop)
        self._queue: deque[TransactionEvent | CallRecord] = self.calls.items
        # Serialises writers (background loop and flush()) so that flush()
        # returns only after batches already taken by the loop are done too.
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._catching_up: set[asyncio.Task[None]] = set()  # the flush started by catch_up(), while it runs
        self._drops_unreported = 0
        self._last_drop_warning = float("-inf")  # the first drop is always reported
        # Every event subject met so far, with its key, in the order met; the first
        # ``_subjects_stored`` of them are in ``event_subjects`` (each batch's transaction adds the rest).
        self._subjects: dict[Subject, int] = {}
        self._subjects_stored = 0
        # SQLite: the inserts run on a connection and a thread of their own (see sqlite_sink).
        self._sqlite = SqliteEventSink(store.database_path) if store.backend == "sqlite" else None

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def recorded(self) -> int:
        """Events accepted into the queue so far."""
        return self.calls.accepted

    @property
    def batch_size(self) -> int:
        return self.calls.batch

    def record(self, event: TransactionEvent | CallRecord) -> None:
        """Queue ``event``; never blocks, never raises. A full queue sheds the event."""
        self.calls.append(event)

    def _count_drop(self) -> None:
        self.dropped += 1
        self._drops_unreported += 1
        now = time.monotonic()
        if now - self._last_drop_warning >= DROP_WARNING_INTERVAL:
            log.warning(
                "event queue full or closed: dropped %d transaction event(s) (%d in total)",
                self._drops_unreported,
                self.dropped,
            )
            self._last_drop_warning = now
            self._drops_unreported = 0

    def start(self) -> None:
        """Start the background writer; call from within the running event loop."""
        if self._task is None or self._task.done():
            self.calls.closed = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="portico-event-writer")

    async def flush(self) -> None:
        """Write everything queued so far (batches the store rejects are counted in ``failed``)."""
        async with self._write_lock:
            while self._queue:
                await self._write_batch(self._take_batch())

    # ASYNC109: the wait is bounded by the caller's budget; the writes themselves are not cancelled.
    async def catch_up(self, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        """Wait, at most ``timeout`` seconds, until every event recorded so far is written.

        Readers call this first (the event search) so that they find the calls that just
        happened, however long the writer's interval. Giving up waiting loses nothing: the
        write goes on in the background."""
        if not self._queue and not self._write_lock.locked():
            return
        # A running catch-up serves every caller: it writes until the queue is empty, so it also
        # writes what was recorded after it started. Under steady traffic it runs as long as the
        # traffic does; one more per search would pile up for as long.
        task = next((t for t in self._catching_up if not t.done()), None)
        if task is None:
            task = asyncio.get_running_loop().create_task(self.flush())
            self._catching_up.add(task)
            task.add_done_callback(self._catching_up.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout)

    # ASYNC109: the timeout is the shutdown budget the caller hands over, part of the contract.
    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stop accepting events, flush what is queued within ``timeout`` seconds, stop the writer.

        Events still queued when the timeout expires are counted in ``dropped``."""
        self.calls.closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout)
        await self._stop_task()
        if self._sqlite is not None:
            self._sqlite.close()
        if self._queue:
            left = len(self._queue)
            self._queue.clear()
            self.dropped += left
            log.warning("event recorder closed with %d unwritten event(s)", left)

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            await wait_event(self._wakeup, self.flush_interval)
            self._wakeup.clear()
            try:
                await self._drain()
            except Exception:  # a bug here must not silently kill the writer
                log.exception("event writer failed; continuing")

    async def _drain(self) -> None:
        # Take the lock per batch so that flush()/close() can interleave.
        while self._queue:
            async with self._write_lock:
                if self._queue:
                    await self._write_batch(self._take_batch())

    def _take_batch(self) -> list[TransactionEvent | CallRecord]:
        return self.calls.take(self.batch_size)

    async def _write_batch(self, batch: list[TransactionEvent | CallRecord]) -> None:
        rows: list[EventRow] = []
        built = 0  # events of the batch turned into rows (or counted as failed)
        try:
            while built < len(batch):
                if built:
                    await asyncio.sleep(0)  # let requests run between slices
                rows += self._rows(batch[built : built + ROWS_PER_SLICE])
                built += ROWS_PER_SLICE
            if rows:
                await self._insert_with_retries(rows)
        except asyncio.CancelledError:
            # close() gave up waiting: this batch is neither written nor queued any more.
            self.dropped += len(rows) + max(len(batch) - built, 0)
            raise

    def _rows(self, batch: list[TransactionEvent | CallRecord]) -> list[EventRow]:
        return rows_of(batch, self._subjects, event_row, self._row_failed)

    def _row_failed(self) -> None:
        """One malformed event must not cost the whole batch: counted and logged, then skipped."""
        self.failed += 1
        log.exception("cannot serialise a transaction event")

    async def _insert_with_retries(self, rows: list[EventRow]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._insert(rows)
            except Exception as exc:  # any store failure: connection lost, table missing, ...
                if attempt == self.max_attempts:
                    self.failed += len(rows)
                    log.error("dropping %d event(s) after %d failed attempts: %s", len(rows), attempt, exc)
                    return
                log.warning("writing %d event(s) failed (attempt %d): %s", len(rows), attempt, exc)
                await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1))
            else:
                self.written += len(rows)
                return

    async def _insert(self, rows: list[EventRow]) -> None:
        # The driver's own statements, not SQLAlchemy's per-row parameter processing (it cost more
        # than the insert itself at gateway rates).
        met = len(self._subjects)
        # The subjects new since the last batch go first, in the batch's transaction.
        new = islice(self._subjects.items(), self._subjects_stored, met)
        subjects = [(key, *(v or None for v in subject)) for subject, key in new]
        if self._sqlite is not None:
            await self._sqlite.write(subjects, rows)
        else:
            async with self.store.engine.begin() as conn:
                if subjects:
                    await conn.exec_driver_sql(_PG_SUBJECT_SQL, subjects)
                await conn.exec_driver_sql(_PG_INSERT_SQL, [_pg_params(row) for row in rows])
        self._subjects_stored = max(self._subjects_stored, met)

