"""Shared fixtures: every store-backed test runs on SQLite and on a real PostgreSQL.

PostgreSQL gets one fresh database per session (dropped at the end) and a clean
schema per test. When the server is unreachable the PostgreSQL variants skip
locally and fail under CI (env var ``CI``)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from portico.store import Store
from tests.support.node import Node, running_node
from tests.support.upstream import Upstream, running_upstream

PG_ADMIN_URL = os.environ.get("PORTICO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_admin(sql: str, url: str = PG_ADMIN_URL) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    name = f"portico_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but {PG_ADMIN_URL} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'portico.db'}"
    url: str = request.getfixturevalue("pg_database")
    asyncio.run(_pg_admin("DROP SCHEMA public CASCADE; CREATE SCHEMA public", url.replace("+asyncpg", "")))
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A migrated store on each backend (PostgreSQL starts from an empty schema)."""
    s = Store(db_url)
    await s.migrate()
    yield s
    await s.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture(autouse=True)
def _admin_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_ADMIN_PASSWORD", "test-secret")
    # bcrypt at its cheapest: the same code path, without ~0.5 s of hashing per node start
    monkeypatch.setenv("PORTICO_BCRYPT_ROUNDS", "4")


@pytest.fixture
async def node(db_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    async with running_node(db_url, tmp_path / "data") as n:
        yield n


@pytest.fixture
async def sqlite_node(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    async with running_node(sqlite_url, tmp_path / "data") as n:
        yield n


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as up:
        yield up


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The compiled-build test (minutes: a mypyc build and a pytest of its own) goes first, so that
    xdist's other worker runs the rest meanwhile instead of the run waiting for it at the end."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_compiled.py"), reverse=True)
