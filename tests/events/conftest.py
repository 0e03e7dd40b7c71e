"""Store fixtures that run each test against every backend (SQLite and PostgreSQL).

PostgreSQL: one fresh database per test session (``portico_test_<random>``),
dropped at the end; its schema is rebuilt before each test. Unreachable server:
skip locally, fail under CI (env var ``CI``) so a broken CI database is never
mistaken for green tests. Override the server with ``PORTICO_TEST_PG_URL``."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from portico.store import Store

PG_ADMIN_URL = os.environ.get("PORTICO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgres"]


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)  # asyncpg runs outside a transaction: CREATE DATABASE is allowed
    finally:
        await conn.close()


# Fixtures are named via name= so that other test packages can import them
# (``from events.conftest import store_fixture``) without shadowing warnings.
@pytest.fixture(scope="session", name="postgres_url")
def postgres_url_fixture() -> Iterator[str]:
    name = f"portico_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError) as exc:  # refused / unreachable; auth or SQL errors still fail
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but {PG_ADMIN_URL} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS, name="store_url")
def store_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # Synchronous on purpose: postgres_url uses asyncio.run, which cannot run
    # inside the event loop that async fixtures execute in.
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'portico.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(name="store")
async def store_fixture(store_url: str) -> AsyncIterator[Store]:
    s = Store(store_url)
    if s.backend == "postgresql":
        # The database is shared by the session; tests may drop tables, so start clean.
        async with s.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await s.migrate()
    yield s
    await s.close()
