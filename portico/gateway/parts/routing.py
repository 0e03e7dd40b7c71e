"""Snapshot part: routing settings the routing policies read per request.

``snap.extras["lb_failover_on_fault"]`` is True when ``pg.lb.failoverOnDowntimeErrorOnly`` is
false: load-balanced routing then fails over on any fault, not only on downtime errors."""

from __future__ import annotations

from portico.gateway.snapshot import Snapshot, snapshot_part
from portico.policies._endpoint import LB_FAILOVER_ON_FAULT
from portico.store import StoreTransaction


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    row = await tx.get("settings", "settings")
    extended = (row.body.get("extendedKeys") or {}) if row else {}
    value = str(extended.get("pg.lb.failoverOnDowntimeErrorOnly", "true")).strip().lower()
    snap.extras[LB_FAILOVER_ON_FAULT] = value == "false"
