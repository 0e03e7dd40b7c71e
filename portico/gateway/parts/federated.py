"""Snapshot part: where federated APIs live.

APIs ingested from another gateway (``federation`` field, see ``portico.federation.ingest``) are
catalogue entries only: Portico does not proxy them, and the gateway answers a call to one with a
404 that names its invoke URL. They are stored inactive, so only inactive APIs are read here;
``snap.extras[FEDERATED_APIS]`` maps such an API's id to its invoke URL (or provider name)."""

from __future__ import annotations

from portico.gateway.snapshot import Snapshot, snapshot_part
from portico.store import StoreTransaction

FEDERATED_APIS = "federated_apis"


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    inactive = [api_id for api_id, api in snap.apis_by_id.items() if not api.active]
    where: dict[str, str] = {}
    if inactive:
        for row in await tx.list("api", ids=inactive):
            fed = row.body.get("federation")
            if not isinstance(fed, dict):
                continue
            details = fed.get("connectionDetails")
            if not isinstance(details, dict):
                details = {}
            place = str(details.get("invokeUrl") or f"the {fed.get('provider', 'external')} gateway")
            if fed.get("removedFromProvider"):
                place += " (it was removed from its provider)"
            where[row.id] = place
    snap.extras[FEDERATED_APIS] = where
