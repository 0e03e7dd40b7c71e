"""Migration 0011: ``transaction_events`` without the index on ``id``, rows kept both ways, on both
backends."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import inspect, text

from portico.events import EventRecorder, TransactionEvent
from portico.events.search import EventFilter, search
from portico.store import Store
from portico.store.migrate import alembic_config, upgrade_to_head

_ROW = {
    "id": "old-1", "creation_date": 1_700_000_000_000, "api_id": "api-1", "api_name": "PetStore",
    "api_version": "1.0", "status": "SUCCESS", "response_code": 200, "correlation_id": "old-1",
    "body": '{"id": "old-1", "apiName": "PetStore", "creationDate": 1700000000000}',
}


def _shape(sync: Any) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The primary-key columns and the indexes of ``transaction_events``."""
    found = inspect(sync)
    indexes = sorted((i["name"] or "", list(i["column_names"])) for i in found.get_indexes("transaction_events"))
    return list(found.get_pk_constraint("transaction_events")["constrained_columns"]), indexes


async def _migrate(store: Store, target: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    async with store.engine.begin() as conn:
        if target == "head":
            await conn.run_sync(upgrade_to_head)
        else:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), target))
        return await conn.run_sync(_shape)


async def test_events_lose_the_id_index_and_keep_their_rows(store: Store) -> None:
    assert await _migrate(store, "0010") == (["id"], [("ix_events_date", ["creation_date"])])
    columns = ", ".join(_ROW)
    async with store.engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO transaction_events ({columns}) VALUES (:{', :'.join(_ROW)})"), _ROW)

    assert await _migrate(store, "head") == ([], [("ix_events_date", ["creation_date"])])
    recorder = EventRecorder(store)
    recorder.record(TransactionEvent(id="new-1", api_id="api-1", api_name="PetStore", creation_date=1_700_000_001_000))
    await recorder.flush()
    found, total = await search(store, EventFilter())
    assert (total, [e["id"] for e in found]) == (2, ["new-1", "old-1"])

    assert await _migrate(store, "0010") == (["id"], [("ix_events_date", ["creation_date"])])
    found, total = await search(store, EventFilter())
    assert (total, [e["id"] for e in found]) == (2, ["new-1", "old-1"])
