"""A store that cannot take a write now (another process holds SQLite's lock past the busy
timeout) is answered 503 with errorDetails and Retry-After, never a 500; nothing is half-written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from portico.store import db
from tests.support.node import running_node


async def test_write_while_another_process_holds_the_lock_is_a_503(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    async with running_node(sqlite_url, tmp_path / "data") as node:
        other = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # e.g. a backup tool, or a second process on the file
            r = await node.admin.post("/applications", json={"name": "Blocked"})
            assert r.status_code == 503, r.text
            assert "busy" in r.json()["errorDetails"] and r.headers["retry-after"]
        finally:
            other.execute("ROLLBACK")
            other.close()
        listed = (await node.admin.get("/applications")).json()["applications"]
        assert [a["name"] for a in listed] == []
        r = await node.admin.post("/applications", json={"name": "Later"})
        assert r.status_code == 200, r.text
