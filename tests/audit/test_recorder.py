"""AuditRecorder against real stores: rows, area selection, store failures, back-pressure, shutdown."""

from __future__ import annotations

import asyncio
import socket

import pytest
from sqlalchemy import select, text

from portico.audit import AuditEntry
from portico.audit.areas import AREAS, area_of, save_enabled_areas
from portico.audit.recorder import AuditRecorder
from portico.store import Store
from portico.store.tables import audit_log


def entry(object_type: str = "API", action: str = "Create", obj: str = "api-1", **kw: str) -> AuditEntry:
    return AuditEntry(object_type=object_type, action=action, object=obj, message=kw.get("message", "m"),
                      user=kw.get("user", "alice"), client_ip=kw.get("client_ip", "10.1.2.3"))


async def stored(store: Store) -> list[dict[str, object]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log).order_by(audit_log.c.creation_date, audit_log.c.id))).all()
    return [dict(r._mapping) for r in rows]


async def test_entries_become_rows_without_moving_the_config_revision(store: Store) -> None:
    recorder = AuditRecorder(store, batch_size=2)
    before = await store.config_revision()
    recorder.record(entry())
    recorder.record(entry("Login", "Failed login", "mallory", user=""))
    recorder.record(entry("Group", "Delete", "g1"))
    await recorder.flush()
    rows = await stored(store)
    assert [(r["object_type"], r["action"], r["object"], r["event_type"]) for r in rows] == [
        ("API", "Create", "api-1", "APIManagement"),
        ("Login", "Failed login", "mallory", "UserManagement"),
        ("Group", "Delete", "g1", "GroupManagement"),
    ]
    first = rows[0]
    assert (first["user"], first["client_ip"], first["message"]) == ("alice", "10.1.2.3", "m")
    assert first["source_machine"] == socket.gethostname()
    assert len({r["id"] for r in rows}) == 3
    assert (recorder.recorded, recorder.written, recorder.failed, recorder.dropped) == (3, 3, 0, 0)
    assert await store.config_revision() == before


async def test_only_selected_areas_are_written(store: Store) -> None:
    async with store.transaction() as tx:
        await save_enabled_areas(tx, frozenset(AREAS) - {"APIManagement"})
    recorder = AuditRecorder(store)
    recorder.record(entry("API", "Activate"))
    recorder.record(entry("Alias", "Create", "al-1"))
    await recorder.flush()
    assert [r["object_type"] for r in await stored(store)] == ["Alias"]
    assert (recorder.written, recorder.skipped) == (1, 1)


async def test_a_failing_store_is_retried_then_counted_and_never_raises(store: Store) -> None:
    recorder = AuditRecorder(store, max_attempts=3, retry_backoff=0.01)
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE audit_log"))
    recorder.record(entry())
    recorder.record(entry())
    await recorder.flush()
    assert (recorder.recorded, recorder.written, recorder.failed) == (2, 0, 2)


async def test_full_queue_sheds_and_close_flushes(store: Store) -> None:
    recorder = AuditRecorder(store, max_queue=3)
    for i in range(5):
        recorder.record(entry(obj=f"a{i}"))
    assert (recorder.recorded, recorder.dropped, recorder.pending) == (3, 2, 3)
    recorder.start()
    await recorder.close()
    assert [r["object"] for r in await stored(store)] == ["a0", "a1", "a2"]
    recorder.record(entry())  # closed: counted, not raised
    assert recorder.dropped == 3


async def test_background_writer_drains_on_its_own(store: Store) -> None:
    recorder = AuditRecorder(store, flush_interval=0.02)
    recorder.start()
    try:
        recorder.record(entry())
        for _ in range(250):
            if recorder.written:
                break
            await asyncio.sleep(0.02)
        assert recorder.written == 1
    finally:
        await recorder.close()


async def test_oversized_values_are_cut_to_the_columns(store: Store) -> None:
    recorder = AuditRecorder(store)
    recorder.record(entry(obj="o" * 2000, message="x" * 10_000, user="u" * 1000))
    await recorder.flush()
    row = (await stored(store))[0]
    assert (len(row["object"]), len(row["message"]), len(row["user"])) == (512, 4000, 256)  # type: ignore[arg-type]


@pytest.mark.parametrize(("object_type", "area"), [
    ("API", "APIManagement"), ("Policy", "PolicyManagement"), ("PolicyAction", "PolicyManagement"),
    ("AccessProfile", "AccessProfileManagement"), ("Login", "UserManagement"), ("Plan", "PlanManagement"),
    ("Something new", "Administration"),
])
def test_object_types_are_grouped_by_area(object_type: str, area: str) -> None:
    assert area_of(object_type) == area
