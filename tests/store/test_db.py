"""The store on both backends: transactions are all-or-nothing, updates check the revision."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from portico.store import ConflictError, Store, db
from portico.store.migrate import alembic_config

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_failed_transaction_leaves_nothing(store: Store) -> None:
    before = await store.config_revision()
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.insert("api", "a", {"x": 1})
            await tx.insert("policy", "p", {"y": 2})
            raise RuntimeError("boom")
    async with store.read() as tx:
        assert await tx.get("api", "a") is None and await tx.get("policy", "p") is None
    assert await store.config_revision() == before


async def test_commit_moves_the_revision_once(store: Store) -> None:
    before = await store.config_revision()
    async with store.transaction() as tx:
        await tx.insert("api", "a", {"x": 1}, name="A", version="1")
        await tx.insert("api", "b", {"x": 2}, name="A", version="2")
    assert await store.config_revision() == before + 1
    async with store.read() as tx:
        assert [r.id for r in await tx.list("api", name="A")] == ["a", "b"]
        assert await tx.count("api") == 2
    async with store.read() as tx:  # reads do not move it
        await tx.get("api", "a")
    assert await store.config_revision() == before + 1


async def test_concurrent_update_loses_the_version_check(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("application", "app", {"name": "v1"})
    async with store.read() as tx:
        seen = await tx.get("application", "app")
    assert seen is not None
    async with store.transaction() as tx:
        await tx.update("application", "app", {"name": "v2"}, seen.revision)
    with pytest.raises(ConflictError):
        async with store.transaction() as tx:
            await tx.update("application", "app", {"name": "stale"}, seen.revision)
    async with store.read() as tx:
        current = await tx.get("application", "app")
    assert current is not None and current.body == {"name": "v2"} and current.revision == 2


async def test_duplicate_insert_conflicts(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("api", "a", {})
    with pytest.raises(ConflictError):
        async with store.transaction() as tx:
            await tx.insert("api", "a", {})


async def test_migrate_is_idempotent(store: Store) -> None:
    await store.migrate()
    assert await store.config_revision() >= 1


async def test_nodes_migrate_an_empty_database_at_once(db_url: str) -> None:
    """Several nodes' first start at the same moment (here three engines): one creates the schema,
    the others wait and find it at head (they used to fail on a duplicate catalog row, or hang).
    On SQLite the engines also race to switch the new file to WAL (see
    test_sqlite_new_file_switches_to_wal_behind_a_lock)."""
    stores = [Store(db_url) for _ in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.migrate() for s in stores)), 60)
        assert [await s.config_revision() for s in stores] == [1, 1, 1]
    finally:
        for s in stores:
            await s.close()


async def test_stores_of_different_databases_migrate_at_once(tmp_path: Path) -> None:
    """Alembic's context is global to the process: migrations of separate databases started
    together used to run their steps on each other's connection, or fail halfway."""
    stores = [Store(f"sqlite:///{tmp_path / f'node{n}.db'}") for n in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.migrate() for s in stores)), 60)
        for s in stores:
            async with s.engine.connect() as conn:
                version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
                tables = {r[0] for r in await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
            assert version == HEAD
            assert {"assets", "transaction_events", "event_subjects"} <= tables
            assert await s.config_revision() == 1
    finally:
        for s in stores:
            await s.close()


async def test_exclusive_has_one_holder_across_stores(db_url: str) -> None:
    """PostgreSQL: one holder at a time across processes (here two engines), released when the
    block ends, also by an exception. SQLite: no lock needed (its writers queue at BEGIN)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL advisory lock")
    stores = [Store(db_url) for _ in range(2)]
    inside: list[int] = []
    seen: list[list[int]] = []

    async def hold(n: int) -> None:
        async with stores[n].exclusive(db.FIRST_START_LOCK):
            inside.append(n)
            await asyncio.sleep(0.2)
            seen.append(list(inside))
            inside.remove(n)

    try:
        with pytest.raises(RuntimeError):
            async with stores[0].exclusive(db.FIRST_START_LOCK):
                raise RuntimeError("boom")
        await asyncio.wait_for(asyncio.gather(hold(0), hold(1)), 10)
        assert sorted(seen) == [[0], [1]]
    finally:
        for s in stores:
            await s.close()


async def test_held_locks_shared_and_exclusive(db_url: str) -> None:
    """``StoreTransaction.hold``: shared holders overlap, an exclusive one has the lock alone, and it
    is released when the transaction ends (here two engines stand for two nodes)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL advisory lock")
    stores = [Store(db_url) for _ in range(3)]
    await stores[0].migrate()
    inside: list[str] = []
    seen: dict[str, list[str]] = {}

    async def hold(n: int, who: str, shared: bool, delay: float = 0.0) -> None:
        await asyncio.sleep(delay)
        async with stores[n].transaction() as tx:
            await tx.hold(db.KEYSTORE_LOCK, shared=shared)
            await tx.hold(db.KEYSTORE_LOCK, shared=shared)  # again in one transaction: no second wait
            inside.append(who)
            await asyncio.sleep(0.15)
            seen[who] = list(inside)  # who else holds it half way through
            await asyncio.sleep(0.15)
            inside.remove(who)

    try:
        await asyncio.wait_for(asyncio.gather(
            hold(0, "use1", True), hold(1, "use2", True), hold(2, "change", False, delay=0.1)), 10)
        assert sorted(seen["use1"]) == sorted(seen["use2"]) == ["use1", "use2"]  # shared: together
        assert seen["change"] == ["change"]  # exclusive: waited for both, alone
    finally:
        for s in stores:
            await s.close()


def test_rejects_unknown_backends() -> None:
    with pytest.raises(ValueError, match="unsupported database backend"):
        Store("mysql://localhost/x")


async def test_sqlite_writers_queue_past_the_busy_timeout(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers of one process wait their turn however long the queue: SQLite's busy timeout (here
    cut to 0.5 s) only bounds waiting for another process, so a burst of concurrent management
    writes under load no longer fails with "database is locked"."""
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 500)
    store = Store(sqlite_url)
    await store.migrate()
    try:
        async def write(n: int) -> None:
            async with store.transaction() as tx:
                await tx.insert("application", f"app{n}", {"n": n})
                await asyncio.sleep(0.3)  # a slow transaction: the queue behind it outlasts 0.5 s

        await asyncio.gather(*(write(n) for n in range(4)))
        async with store.read() as tx:
            assert await tx.count("application") == 4
    finally:
        await store.close()


async def test_sqlite_new_file_switches_to_wal_behind_a_lock(sqlite_url: str) -> None:
    """A store opening a new file while another connection holds its write lock (here a plain
    connection; another store's connection switching the file to WAL holds it too) waits for the
    lock and then switches the file to WAL. It used to fail at once, "database is locked": SQLite
    refuses the switch while a file not yet in WAL is locked for writing, without consulting the
    busy timeout (which was, besides, set only after the switch)."""
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    store = Store(sqlite_url)
    try:
        migrating = asyncio.ensure_future(store.migrate())
        await asyncio.sleep(0.3)
        assert not migrating.done(), migrating
        other.execute("COMMIT")
        await asyncio.wait_for(migrating, 20)
        # switched by the migrating connection (before any other of the store's connects)
        header = await asyncio.to_thread(Path(sqlite_url.removeprefix("sqlite:///")).read_bytes)
        assert header[18:20] == b"\x02\x02"   # the file format's "WAL" read and write versions
        assert await store.config_revision() == 1
    finally:
        other.close()
        await store.close()


async def test_sqlite_stores_open_new_files_at_once(tmp_path: Path) -> None:
    """Three stores (several engines and pooled connections each) open the same new file at once,
    over and over: every connection switches it to WAL or finds it switched. (A stress check: the
    old code failed here only now and then; the test above fails on it every time.)"""
    async def write(store: Store) -> None:
        async with store.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))

    async def read(store: Store) -> None:
        async with store.read() as tx:
            await tx.connection.execute(text("SELECT 1"))

    for n in range(20):
        stores = [Store(f"sqlite:///{tmp_path / f'new{n}.db'}") for _ in range(3)]
        try:
            await asyncio.gather(*(op(s) for s in stores for op in (write, read, read)))
        finally:
            for s in stores:
                await s.close()
