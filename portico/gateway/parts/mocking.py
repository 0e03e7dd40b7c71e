"""Snapshot part: mocked APIs (``mockService.enableMock``) get a :class:`MockResponder` at the
end of their request plans, so they answer from their definition's examples (gateway/mock.py)."""

from __future__ import annotations

from portico.gateway.mock import MockResponder
from portico.gateway.snapshot import Snapshot, snapshot_part
from portico.store import StoreTransaction


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    for row in await tx.list("api"):
        mock = row.body.get("mockService")
        api = snap.apis_by_id.get(row.id)
        if api is None or not (isinstance(mock, dict) and mock.get("enableMock") is True):
            continue
        responder = MockResponder(row.body.get("apiDefinition") or {})
        for plan in (api.plan, *api.scoped_plans.values()):
            plan.request = (*plan.request, responder)
