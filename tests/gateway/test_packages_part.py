"""The packages snapshot part (portico/gateway/parts/packages.py): quota survival starts with the
first snapshot build whose restore succeeded; a build whose restore failed on a store error does
not stop the next one from restoring and saving."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from portico.counters import counters_of, window_for
from portico.counters.memory import MemoryCounters
from portico.counters.survival import QuotaSurvival
from portico.domain.plan_limits import QUOTA_PREFIX
from portico.gateway.snapshot import Services, build_snapshot
from portico.store import Store
from portico.store.tables import quota_counters


async def _rename(store: Store, old: str, new: str) -> None:
    async with store.transaction() as tx:
        await tx.connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def _saved(store: Store) -> dict[str, int]:
    async with store.read() as tx:
        rows = (await tx.connection.execute(select(quota_counters))).all()
    return {r._mapping["key"]: r._mapping["count"] for r in rows}


async def test_a_build_after_a_failed_restore_restores_and_saves(store: Store) -> None:
    window = window_for(int(time.time() * 1000), 1, "days")
    key = f"{QUOTA_PREFIX}app:1"
    before = MemoryCounters()  # what a node counted before it stopped
    await before.add(key, window, 4)
    await QuotaSurvival(store, before, QUOTA_PREFIX, 60).save()
    services = Services({"store": store})
    try:
        # A real store error while the first build restores: the saved counts cannot be read.
        await _rename(store, "quota_counters", "quota_counters_away")
        with pytest.raises(SQLAlchemyError):
            await build_snapshot(store, services=services)
        await _rename(store, "quota_counters_away", "quota_counters")
        await build_snapshot(store, services=services)  # the store is back: this build restores
        counters = counters_of(services)
        assert await counters.get(key, window) == 4
        await counters.add(key, window, 1)
    finally:
        await services.close()  # saves at shutdown, as the running survival does
    assert (await _saved(store))[key] == 5
