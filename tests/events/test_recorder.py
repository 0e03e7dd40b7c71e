"""EventRecorder against real stores: batching, back-pressure, store failures, shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text

from portico.events import EventRecorder, TransactionEvent
from portico.events.calls import EventRow
from portico.store import Store
from portico.store.tables import transaction_events


def event(**kw: Any) -> TransactionEvent:
    kw.setdefault("api_id", "api-1")
    kw.setdefault("api_name", "PetStore")
    return TransactionEvent(**kw)


async def stored_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(transaction_events))).scalar_one())


async def written_at_least(recorder: EventRecorder, n: int, within: float = 5.0) -> None:
    """Give the background writer up to ``within`` seconds to commit ``n`` events."""
    for _ in range(int(within / 0.02)):
        if recorder.written >= n:
            return
        await asyncio.sleep(0.02)


def counting_inserts(recorder: EventRecorder) -> list[int]:
    """Record the size of every insert transaction the recorder makes."""
    sizes: list[int] = []
    real = recorder._insert

    async def insert(rows: list[EventRow]) -> None:
        sizes.append(len(rows))
        await real(rows)

    recorder._insert = insert  # type: ignore[method-assign]
    return sizes


def call_record(**fields: Any) -> tuple[Any, ...]:
    """A gateway call record (``events.calls.CALL_FIELDS``) of a successful anonymous call, with ``fields``."""
    from portico.events.calls import CALL_FIELDS

    values = dict.fromkeys(CALL_FIELDS)
    values.update(created_ms=int(time.time() * 1000), api_id="api-1", api_name="PetStore", api_version="1.0",
                  client_ip="127.0.0.1", http_method="GET", query="", request_headers=(b"host", b"x"),
                  api_key_header=b"x-gateway-apikey", response_code=200, failure_key="", total_ms=1,
                  provider_ms=0, data_size=10)
    values.update(fields)
    return tuple(values[f] for f in CALL_FIELDS)


def test_to_json_uses_the_reference_names() -> None:
    e = TransactionEvent(
        api_id="a", correlation_id="c", server_id="s", native_url="http://n", response_code=503,
        status="FAILURE", cached_response=False, query_parameters={"q": "1"},
    )
    body = e.to_json()
    assert body["eventType"] == "Transactional"
    assert body["sourceGateway"] == "APIGateway"
    assert (body["correlationID"], body["serverID"], body["nativeURL"]) == ("c", "s", "http://n")
    assert body["responseCode"] == "503" and body["cachedResponse"] == "false"
    assert body["queryParameters"] == {"q": "1"} and body["creationDate"] == e.creation_date
    assert "apiName" not in body  # unset fields are left out


async def test_batch_insert_of_2000_events(store: Store) -> None:
    recorder = EventRecorder(store, batch_size=500)
    sizes = counting_inserts(recorder)
    events = [event(correlation_id=f"c{i}") for i in range(2000)]
    for e in events:
        recorder.record(e)
    await recorder.flush()
    assert sizes == [500, 500, 500, 500]
    assert (recorder.recorded, recorder.written, recorder.dropped, recorder.failed) == (2000, 2000, 0, 0)
    assert await stored_count(store) == 2000
    async with store.engine.connect() as conn:
        query = select(transaction_events).where(transaction_events.c.id == events[7].id)
        row = (await conn.execute(query)).one()
    assert (row.api_id, row.correlation_id, row.status) == ("api-1", "c7", "SUCCESS")
    assert orjson.loads(row.body) == events[7].to_json()


async def test_background_writer_flushes_on_its_own(store: Store) -> None:
    recorder = EventRecorder(store, flush_interval=0.05)
    recorder.start()
    try:
        for _ in range(3):
            recorder.record(event())
        await written_at_least(recorder, 3)
        assert recorder.written == 3
    finally:
        await recorder.close()
    assert await stored_count(store) == 3


async def test_full_batch_wakes_the_writer_early(store: Store) -> None:
    recorder = EventRecorder(store, batch_size=10, flush_interval=60)
    recorder.start()
    try:
        for _ in range(10):
            recorder.record(event())
        await written_at_least(recorder, 10)
        assert recorder.written == 10  # long before the 60 s interval
    finally:
        await recorder.close()


async def test_failing_store_is_counted_and_never_reaches_callers(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE transaction_events"))
    recorder = EventRecorder(store, batch_size=4, max_attempts=3, retry_backoff=0.01, flush_interval=0.02)
    sizes = counting_inserts(recorder)
    recorder.start()
    try:
        for _ in range(6):
            recorder.record(event())  # must not raise
        await recorder.flush()
        assert (recorder.recorded, recorder.written, recorder.failed, recorder.dropped) == (6, 0, 6, 0)
        assert sum(sizes) == 6 * 3  # each batch tried max_attempts times, then given up
        recorder.record(event())  # still accepting after failures
        assert recorder.recorded == 7
    finally:
        await recorder.close(timeout=5)
    assert recorder.failed == 7
    assert any("after 3 failed attempts" in r.getMessage() for r in caplog.records)


async def test_store_recovering_between_retries_loses_nothing(store: Store) -> None:
    recorder = EventRecorder(store, max_attempts=5, retry_backoff=0.01)
    real = recorder._insert
    calls = 0

    async def flaky(rows: list[EventRow]) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("database restarting")
        await real(rows)

    recorder._insert = flaky  # type: ignore[method-assign]
    recorder.record(event())
    await recorder.flush()
    assert (recorder.written, recorder.failed, calls) == (1, 0, 3)
    assert await stored_count(store) == 1


async def test_queue_overflow_drops_and_warns_once(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    recorder = EventRecorder(store, max_queue=10)
    with caplog.at_level(logging.WARNING, logger="portico.events.recorder"):
        for _ in range(15):
            recorder.record(event())
    assert (recorder.recorded, recorder.dropped, recorder.pending) == (10, 5, 10)
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited, not one line per dropped event
    await recorder.flush()
    assert recorder.written == 10 and await stored_count(store) == 10


async def test_close_writes_everything_pending(store: Store) -> None:
    recorder = EventRecorder(store, batch_size=100, flush_interval=60)
    recorder.start()
    for _ in range(250):
        recorder.record(event())
    await recorder.close(timeout=10)
    assert (recorder.written, recorder.pending) == (250, 0)
    assert await stored_count(store) == 250
    recorder.record(event())  # after close: refused, counted, no exception
    assert recorder.dropped == 1


async def test_close_is_bounded_when_the_store_hangs(store: Store) -> None:
    recorder = EventRecorder(store, batch_size=5, flush_interval=60)

    async def hang(rows: list[EventRow]) -> None:
        await asyncio.sleep(3600)

    recorder._insert = hang  # type: ignore[method-assign]
    recorder.start()
    for _ in range(12):
        recorder.record(event())
    started = time.monotonic()
    await recorder.close(timeout=0.2)
    assert time.monotonic() - started < 2
    assert (recorder.written, recorder.dropped, recorder.pending) == (0, 12, 0)


async def test_unserialisable_values_do_not_lose_the_batch(store: Store) -> None:
    recorder = EventRecorder(store)
    recorder.record(event(custom_fields={"when": object()}))
    recorder.record(event())
    await recorder.flush()
    assert (recorder.written, recorder.failed) == (2, 0)


async def test_a_malformed_record_is_counted_and_logged_and_the_rest_written(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = EventRecorder(store)
    recorder.record(call_record())
    recorder.record(call_record()[:5])  # cut short: no row can be made of it
    recorder.record(event())
    await recorder.flush()
    assert (recorder.written, recorder.failed) == (2, 1)
    logged = [r for r in caplog.records if "cannot serialise" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None and logged[0].exc_info[0] is IndexError
    assert await stored_count(store) == 2


async def test_catch_up_writes_what_is_pending_without_waiting_for_the_interval(store: Store) -> None:
    recorder = EventRecorder(store, flush_interval=60)
    recorder.start()
    try:
        for _ in range(3):
            recorder.record(event())
        await recorder.catch_up()
        assert (recorder.written, recorder.pending) == (3, 0)
        assert await stored_count(store) == 3
    finally:
        await recorder.close()


async def test_catch_up_gives_up_waiting_but_not_writing(store: Store) -> None:
    recorder = EventRecorder(store, flush_interval=60)
    release = asyncio.Event()
    real = recorder._insert

    async def slow(rows: list[tuple[Any, ...]]) -> None:
        await release.wait()
        await real(rows)

    recorder._insert = slow  # type: ignore[method-assign]
    recorder.record(event())
    started = time.monotonic()
    await recorder.catch_up(timeout=0.1)
    assert time.monotonic() - started < 1 and recorder.written == 0
    release.set()
    await written_at_least(recorder, 1)
    assert (recorder.written, recorder.dropped) == (1, 0)


async def test_a_large_batch_is_built_in_slices_between_requests(store: Store) -> None:
    # Building 5,000 rows at once would stall the event loop for tens of milliseconds.
    recorder = EventRecorder(store, batch_size=1000, flush_interval=60)
    for i in range(1000):
        recorder.record(event(correlation_id=f"c{i}"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.get_running_loop().create_task(ticker())
    sizes = counting_inserts(recorder)
    await recorder.flush()
    task.cancel()
    assert sizes == [1000] and recorder.written == 1000
    assert ticks >= 1000 // 100 - 1  # the loop ran between the slices of 100 rows


@pytest.mark.parametrize("turns", range(12))
async def test_close_stops_a_writer_woken_at_the_same_moment(store: Store, turns: int) -> None:
    # Python 3.11's wait_for returns its result instead of raising when the cancellation arrives
    # just as the awaited wake-up fires: the writer loop then ran on after close() and shutdown
    # waited for it forever. Events recorded while the writer is busy set the wake-up again.
    recorder = EventRecorder(store, batch_size=1, flush_interval=60)
    recorder.start()
    await asyncio.sleep(0.05)  # the writer waits for work
    for _ in range(3):
        recorder.record(event())  # each one a full batch: wakes the writer
        for _ in range(turns):
            await asyncio.sleep(0)
    started = time.monotonic()
    await recorder.close(timeout=2)
    assert time.monotonic() - started < 1.5
    assert recorder.written == 3


async def test_missing_values_are_stored_as_null(store: Store) -> None:
    # Call records (the gateway's cheap form) and full events both leave NULL, not "", where a call
    # had no application, package, plan or correlation id.
    from portico.events.search import EventFilter, search

    recorder = EventRecorder(store)
    recorder.record(call_record())
    recorder.record(event())
    await recorder.flush()
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(
            transaction_events.c.application_id, transaction_events.c.application_name,
            transaction_events.c.package_id, transaction_events.c.plan_id, transaction_events.c.correlation_id,
        ))).all()
    assert [tuple(r) for r in rows] == [(None,) * 5, (None,) * 5]
    found, _ = await search(store, EventFilter())
    assert all("applicationId" not in e and "correlationID" not in e for e in found)
    recorder.record(call_record(application_id="app-1", application_name="Shop", correlation_id="c-1"))
    await recorder.flush()
    found, _ = await search(store, EventFilter(application_id="app-1"))
    assert [(e["applicationId"], e["applicationName"], e["correlationID"]) for e in found] == [("app-1", "Shop", "c-1")]


def test_sqlite_batches_use_a_few_statement_sizes() -> None:
    from portico.events.sqlite_sink import ROWS_PER_STATEMENT as SQLITE_ROWS_PER_STATEMENT
    from portico.events.sqlite_sink import statement_sizes as _statement_sizes

    seen: set[int] = set()
    for n in range(0, 3 * SQLITE_ROWS_PER_STATEMENT + 7):
        sizes = _statement_sizes(n)
        assert sum(sizes) == n
        seen.update(sizes)
    # full statements plus powers of two: every batch size reuses prepared statements
    assert seen <= {SQLITE_ROWS_PER_STATEMENT} | {1 << i for i in range(SQLITE_ROWS_PER_STATEMENT.bit_length())}


async def test_odd_batch_sizes_are_written_whole(store: Store) -> None:
    recorder = EventRecorder(store)
    for n in (1, 3, 137, 201):
        for _ in range(n):
            recorder.record(event())
        await recorder.flush()
    assert recorder.written == await stored_count(store) == 342


async def test_searches_during_sustained_traffic_share_one_catch_up(store: Store) -> None:
    """Under steady traffic the queue never empties, so a catch-up flush runs as long as the
    traffic does; each search used to start one more, and a dashboard polling the event search
    piled up tasks for as long as the load lasted."""
    recorder = EventRecorder(store, flush_interval=60)
    recorder.start()
    traffic = True

    async def gateway() -> None:
        while traffic:
            for _ in range(10):
                recorder.record(event())
            # requests keep arriving while each batch is written (paced: ~10,000 a second at most,
            # so that a slow machine's writer keeps up and nothing is shed)
            await asyncio.sleep(0.001)

    producer = asyncio.create_task(gateway())
    try:
        for _ in range(10):
            await asyncio.sleep(0.01)  # some traffic
            await recorder.catch_up(timeout=0.05)
        assert len(recorder._catching_up) <= 1
    finally:
        traffic = False
        await producer
        await recorder.close()
    assert recorder.pending == 0 and recorder.dropped == 0 and not recorder._catching_up


async def subject_rows(store: Store) -> Counter[tuple[Any, ...]]:
    from portico.store.tables import event_subjects

    async with store.engine.connect() as conn:
        query = select(event_subjects.c.api_id, event_subjects.c.application_id)
        return Counter(tuple(r) for r in (await conn.execute(query)).all())


async def test_each_subject_is_stored_once_and_events_get_its_values(store: Store) -> None:
    from portico.events.search import EventFilter, search

    recorder = EventRecorder(store)
    recorder.record(call_record())
    recorder.record(call_record(application_id="app-1", application_name="Shop", package_id="pk", plan_id="pl"))
    recorder.record(event(api_version="2.0"))
    await recorder.flush()
    for _ in range(3):  # the same subjects again, in later batches
        recorder.record(call_record())
        recorder.record(call_record(application_id="app-1", application_name="Shop", package_id="pk", plan_id="pl"))
        await recorder.flush()
    assert await subject_rows(store) == Counter({("api-1", None): 2, ("api-1", "app-1"): 1})
    found, total = await search(store, EventFilter(application_id="app-1"))
    assert total == 4
    assert {(e["apiName"], e["apiVersion"], e["applicationName"], e["packageId"], e["planId"]) for e in found} == {
        ("PetStore", "1.0", "Shop", "pk", "pl")
    }
    found, _ = await search(store, EventFilter(api_version="2.0"))
    assert [(e["apiId"], e["apiName"]) for e in found] == [("api-1", "PetStore")]


async def test_a_subject_whose_batch_failed_is_stored_with_the_next_one(store: Store) -> None:
    # The subject goes in the batch's transaction: when that rolls back, the next batch must add
    # it again, or its events would lose their API and application.
    from portico.events.search import EventFilter, search

    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE transaction_events"))
    recorder = EventRecorder(store, max_attempts=1)
    recorder.record(call_record(application_id="app-2", application_name="Late"))
    await recorder.flush()
    assert (recorder.written, recorder.failed) == (0, 1)
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: transaction_events.create(sync))
    recorder.record(call_record(application_id="app-2", application_name="Late"))
    await recorder.flush()
    found, _ = await search(store, EventFilter())
    assert [(e["apiName"], e.get("applicationId"), e.get("applicationName")) for e in found] == [
        ("PetStore", "app-2", "Late")
    ]


async def test_a_calls_event_takes_its_correlation_id_as_its_id(store: Store) -> None:
    from portico.events.search import EventFilter, search

    recorder = EventRecorder(store)
    recorder.record(call_record(correlation_id="corr-1"))
    recorder.record(call_record())  # no exchange (an unknown API, say): an id of its own, no correlation id
    recorder.record(event(id="ev-1", correlation_id="corr-2"))
    await recorder.flush()
    found, _ = await search(store, EventFilter())
    assert sorted((e["id"] if e["id"] in ("corr-1", "ev-1") else "own", e.get("correlationID")) for e in found) == [
        ("corr-1", "corr-1"), ("ev-1", "corr-2"), ("own", None),
    ]
