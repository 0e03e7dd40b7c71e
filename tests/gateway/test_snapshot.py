"""Snapshot builds reuse what did not change (validated models, one read per kind) and still see
every change."""

from __future__ import annotations

import asyncio

from portico.gateway.snapshot import build_snapshot
from portico.store import Store


def _app(app_id: str, key: str, name: str = "app") -> dict[str, object]:
    return {"id": app_id, "name": name, "apiKey": key, "identifiers": [], "apiIds": []}


async def test_models_of_unchanged_rows_are_reused_and_changes_seen(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("application", "a1", _app("a1", "key-1"))
        await tx.insert("application", "a2", _app("a2", "key-2"))
    first = await build_snapshot(store)
    kept = first.apps_by_key["key-2"]

    async with store.transaction() as tx:
        row = await tx.get("application", "a1")
        assert row is not None
        await tx.update("application", "a1", _app("a1", "key-1b"), row.revision)
    second = await build_snapshot(store, first.hostnames, first.services)
    assert "key-1" not in second.apps_by_key and second.apps_by_key["key-1b"].id == "a1"
    assert second.apps_by_key["key-2"] == kept

    # Deleted and created again under the same id: revision 1 again, but a new row.
    await asyncio.sleep(0.002)
    async with store.transaction() as tx:
        await tx.delete("application", "a2")
    async with store.transaction() as tx:
        await tx.insert("application", "a2", _app("a2", "key-2", name="renamed"))
    third = await build_snapshot(store, second.hostnames, second.services)
    assert third.apps_by_key["key-2"].name == "renamed"

    async with store.transaction() as tx:
        await tx.delete("application", "a1")
    fourth = await build_snapshot(store, third.hostnames, third.services)
    assert "key-1b" not in fourth.apps_by_key


async def test_a_memo_transaction_reads_each_kind_once(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("application", "a1", _app("a1", "k1"))
    async with store.read(memo=True) as tx:
        first = await tx.list("application")
        first.clear()  # callers get their own list
        again = await tx.list("application")
        assert [r.id for r in again] == ["a1"]
        assert again[0] is (await tx.list("application"))[0]
        assert [r.id for r in await tx.list("application", ids=["a1"])] == ["a1"]  # filtered: a real read
    async with store.read() as tx:
        assert (await tx.list("application"))[0] is not (await tx.list("application"))[0]
