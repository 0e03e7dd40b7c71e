"""The store: an async engine, transactions, and typed access to asset rows.

Every write goes through :class:`StoreTransaction`, so an asset and everything
created with it commit together or not at all, and each commit moves the
shared configuration revision that running gateways poll (hot deploy)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from portico.store.tables import assets, config_state

# How long a SQLite statement waits for another process's write lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long a writer waits for its turn behind this process's other writers (SQLAlchemy's pool
# timeout: past it, sqlalchemy.exc.TimeoutError, which the APIs answer 503).
SQLITE_WRITE_WAIT = 60.0
# How often a connection tries to switch a new SQLite file to WAL before giving up (see _use_wal).
_WAL_ATTEMPTS = 5

# PostgreSQL advisory locks (``Store.migrate``, ``Store.exclusive``) are keyed by two int4s: a class
# of Portico's own (kept apart from another program's locks on the same database), then the purpose.
_LOCK_CLASS = 0x506F7274  # "Port"
MIGRATION_LOCK = 1
FIRST_START_LOCK = 2  # seeding at start (portico/app.py)
KEYSTORE_LOCK = 3  # keystores/truststores replaced or deleted vs. new uses of them (security/keystore/records.py)


class ConflictError(Exception):
    """An update lost the optimistic version check, or a create collided."""


STORE_BUSY = "the store is busy (too many writes at once, or another process holds it); try again shortly"
_BUSY_SQLITE = ("database is locked", "database table is locked", "database is busy")


def store_busy(exc: BaseException) -> bool:
    """True when ``exc`` says the store could not take a statement now rather than that anything
    is wrong: no pooled connection came free in time, or SQLite's lock stayed taken past the busy
    timeout. The APIs answer it 503 (with ``STORE_BUSY``) instead of 500; the transaction was
    rolled back, so retrying is safe."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        return any(marker in text for marker in _BUSY_SQLITE)
    return False


@dataclass(frozen=True, slots=True)
class AssetRow:
    kind: str
    id: str
    body: dict[str, Any]
    revision: int
    created_at: int
    updated_at: int


def now_ms() -> int:
    return int(time.time() * 1000)


def normalize_db_url(url: str) -> str:
    """Accept plain ``postgresql://`` / ``sqlite:///`` URLs and pick the async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def sqlite_url_for(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'portico.db').resolve()}"


def _json_loads(text: str | bytes) -> Any:
    """JSON columns are decoded with orjson (a snapshot build decodes every asset; the standard
    library took a fifth of it); what orjson refuses (``NaN``, integers beyond 64 bits, written
    by the standard library's encoder) is still read as before."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _row(r: Any) -> AssetRow:
    return AssetRow(r.kind, r.id, r.body, r.revision, r.created_at, r.updated_at)


class StoreTransaction:
    """Reads and writes inside one database transaction.

    A transaction opened with ``memo=True`` (``Store.read(memo=True)``: read-only, e.g. a snapshot
    build whose parts each list the applications) reads each kind's full list once; later
    ``list(kind)`` calls get a copy of that list, with the same rows."""

    def __init__(self, conn: AsyncConnection, memo: bool = False) -> None:
        self._conn = conn
        self.changed = False
        self._lists: dict[str, list[AssetRow]] | None = {} if memo else None
        self._held: dict[int, bool] = {}  # advisory locks held: purpose -> exclusive

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    async def hold(self, purpose: int, shared: bool = False) -> None:
        """Wait for the advisory lock ``purpose`` and keep it until this transaction ends, so that a
        check and the write it allows are one step for every other holder across the nodes.
        Shared holders do not exclude each other, only an exclusive one (which excludes all).

        On PostgreSQL ``pg_advisory_xact_lock[_shared]``; on SQLite nothing: a write transaction
        holds the database's one write lock from BEGIN."""
        if self._held.get(purpose, False) or (shared and purpose in self._held):
            return
        if self._conn.dialect.name == "postgresql":
            fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            await self._conn.execute(text(f"SELECT {fn}(:c, :p)"), {"c": _LOCK_CLASS, "p": purpose})
        self._held[purpose] = not shared

    async def get(self, kind: str, asset_id: str) -> AssetRow | None:
        res = await self._conn.execute(
            select(assets).where(and_(assets.c.kind == kind, assets.c.id == asset_id))
        )
        r = res.first()
        return _row(r) if r is not None else None

    async def list(
        self,
        kind: str,
        ids: Iterable[str] | None = None,
        name: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[AssetRow]:
        memo = self._lists if ids is None and name is None and not offset and limit is None else None
        if memo is not None and kind in memo:
            return list(memo[kind])
        q = select(assets).where(assets.c.kind == kind)
        if ids is not None:
            q = q.where(assets.c.id.in_(list(ids)))
        if name is not None:
            q = q.where(assets.c.name == name)
        q = q.order_by(assets.c.created_at, assets.c.id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        res = await self._conn.execute(q)
        rows = [_row(r) for r in res]
        if memo is not None:
            memo[kind] = rows
            return list(rows)
        return rows

    async def count(self, kind: str) -> int:
        res = await self._conn.execute(select(func.count()).select_from(assets).where(assets.c.kind == kind))
        return int(res.scalar_one())

    async def insert(
        self,
        kind: str,
        asset_id: str,
        body: dict[str, Any],
        name: str | None = None,
        version: str | None = None,
    ) -> AssetRow:
        if await self.get(kind, asset_id) is not None:
            raise ConflictError(f"{kind} {asset_id!r} already exists")
        ts = now_ms()
        try:
            await self._conn.execute(
                insert(assets).values(
                    kind=kind, id=asset_id, name=name, version=version, body=body,
                    revision=1, created_at=ts, updated_at=ts,
                )
            )
        except IntegrityError:
            # A concurrent transaction inserted the same key first (PostgreSQL waits, then fails).
            raise ConflictError(f"{kind} {asset_id!r} already exists") from None
        self.changed = True
        return AssetRow(kind, asset_id, body, 1, ts, ts)

    async def update(
        self,
        kind: str,
        asset_id: str,
        body: dict[str, Any],
        expected_revision: int,
        name: str | None = None,
        version: str | None = None,
    ) -> AssetRow:
        """Replace the body if the row is still at ``expected_revision``; else ConflictError."""
        ts = now_ms()
        res = await self._conn.execute(
            update(assets)
            .where(
                and_(
                    assets.c.kind == kind,
                    assets.c.id == asset_id,
                    assets.c.revision == expected_revision,
                )
            )
            .values(body=body, name=name, version=version, revision=expected_revision + 1, updated_at=ts)
        )
        if res.rowcount != 1:
            raise ConflictError(f"{kind} {asset_id!r} was changed concurrently; reload and retry")
        self.changed = True
        current = await self.get(kind, asset_id)
        assert current is not None
        return current

    async def upsert(self, kind: str, asset_id: str, body: dict[str, Any], name: str | None = None) -> None:
        current = await self.get(kind, asset_id)
        if current is None:
            await self.insert(kind, asset_id, body, name=name)
        else:
            await self.update(kind, asset_id, body, current.revision, name=name)

    async def delete(self, kind: str, asset_id: str) -> bool:
        res = await self._conn.execute(
            delete(assets).where(and_(assets.c.kind == kind, assets.c.id == asset_id))
        )
        self.changed = self.changed or res.rowcount > 0
        return bool(res.rowcount)


def _use_wal(cur: Any) -> None:
    """Switch the database to WAL (kept in the file: once done, later connections find it so).

    Connections opening a new file at once (several stores or engines of one process, a pool's
    first connections, other processes) race to switch it, and the switch failed with "database is
    locked" about once in eight starts of three: SQLite refuses it at once, busy timeout or not,
    while another connection holds the write lock of a file not yet in WAL (as one switching it
    does), and a reader's lock only waits when the busy timeout is already set. So on a refusal (an
    error, or the old mode answered) wait for the lock the way a writer does, through the busy
    timeout, and try again."""
    for _ in range(_WAL_ATTEMPTS):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            if str(cur.fetchone()[0]).lower() in ("wal", "memory"):   # memory: an in-memory database
                return
        except Exception as exc:   # the driver's OperationalError
            if not any(marker in str(exc).lower() for marker in _BUSY_SQLITE):
                raise
        cur.execute("BEGIN IMMEDIATE")   # waits up to the busy timeout for the lock's holder
        cur.execute("COMMIT")
    cur.execute("PRAGMA journal_mode=WAL")   # a last try: its error, if any, is the caller's


def prepare_sqlite_connection(dbapi_conn: Any) -> None:
    """Set up a new connection to the store's SQLite file (the engines', the event writer's): no
    implicit transactions (BEGIN is issued explicitly), the busy timeout, WAL, synchronous=NORMAL."""
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        # First: the statements below take locks too, and must wait for them like any other.
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def _sqlite_setup(engine: AsyncEngine, immediate: bool) -> None:
    from sqlalchemy import event

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        prepare_sqlite_connection(dbapi_conn)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Store:
    """Owns the engines. ``transaction()`` is the only way to write."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = normalize_db_url(url)
        self.backend = make_url(self.url).get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "json_deserializer": _json_loads}
        if self.backend == "postgresql":
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine
        self.read_engine: AsyncEngine
        if self.backend != "sqlite":
            self.engine = self.read_engine = create_async_engine(self.url, **kwargs)
        else:
            # Writers take the write lock when they begin (BEGIN IMMEDIATE), so concurrent writes
            # queue up instead of failing on a stale snapshot; readers use their own engine.
            # SQLite has one writer at a time anyway: the write engine holds one connection, so a
            # process's writers queue for it in order (for up to SQLITE_WRITE_WAIT seconds) rather
            # than polling SQLite's lock, where a burst of them under load outlasted the busy
            # timeout and failed with "database is locked".
            self.engine = create_async_engine(self.url, **kwargs, pool_size=1, max_overflow=0,
                                              pool_timeout=SQLITE_WRITE_WAIT)
            _sqlite_setup(self.engine, immediate=True)
            self.read_engine = create_async_engine(self.url, **kwargs)
            _sqlite_setup(self.read_engine, immediate=False)

    @property
    def database_path(self) -> str:
        """The SQLite file's path (for connections of its own, such as the event writer's)."""
        if self.backend != "sqlite":
            raise ValueError("a PostgreSQL store has no database file")
        return make_url(self.url).database or ""

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; safe with several nodes at once.

        Nodes started together on an empty PostgreSQL database used to create the same tables side
        by side, and all but one failed on a duplicate catalog row (``pg_type_typname_nsp_index``).
        The migrating transaction takes an advisory lock first: the other nodes wait for it to
        commit and then find the schema at head. (On SQLite the write transaction's BEGIN IMMEDIATE
        serialises the processes already.) Within one process, migrations of any databases run one
        at a time (Alembic's context is global: ``migrate.migration_turn``)."""
        from portico.store.migrate import migration_turn, upgrade_to_head

        async with migration_turn(), self.engine.begin() as conn:
            await self._lock(conn, MIGRATION_LOCK)
            await conn.run_sync(upgrade_to_head)

    async def _lock(self, conn: AsyncConnection, purpose: int) -> None:
        """Wait for the advisory lock ``purpose``, held until ``conn``'s transaction ends."""
        if self.backend == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:c, :p)"), {"c": _LOCK_CLASS, "p": purpose})

    @asynccontextmanager
    async def exclusive(self, purpose: int) -> AsyncIterator[None]:
        """One holder at a time of ``purpose`` across every process sharing the database, for work
        done in transactions of its own (e.g. the first-start seeding, which checks for a row and
        inserts it: two nodes at once both inserted, and one failed to start).

        On PostgreSQL a transaction-scoped advisory lock on a connection of its own, kept open
        until the block ends; it is released whatever happens, since the transaction ends with the
        block (and with the connection, if the process dies). On SQLite nothing more is needed:
        every write transaction takes the database's one write lock at BEGIN."""
        if self.backend != "postgresql":
            yield
            return
        async with self.engine.begin() as conn:
            await self._lock(conn, purpose)
            yield

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        async with self.engine.begin() as conn:
            tx = StoreTransaction(conn)
            yield tx
            if tx.changed:
                await conn.execute(
                    update(config_state)
                    .where(config_state.c.id == 1)
                    .values(revision=config_state.c.revision + 1)
                )

    @asynccontextmanager
    async def read(self, memo: bool = False) -> AsyncIterator[StoreTransaction]:
        async with self.read_engine.connect() as conn:
            yield StoreTransaction(conn, memo=memo)

    async def config_revision(self) -> int:
        async with self.read_engine.connect() as conn:
            res = await conn.execute(select(config_state.c.revision).where(config_state.c.id == 1))
            value = res.scalar_one_or_none()
            return int(value or 0)

    async def close(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
