"""Snapshot part: mocked APIs (``mockService.enableMock``) get a :class:`MockResponder` at the
end of their request plans, so they answer from their definition's examples (gateway/mock.py)."""

from __future__ import annotations

from portico.gateway.mock import MockResponder
from portico.gateway.snapshot import Snapshot, snapshot_part, with_request
from portico.store import StoreTransaction


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    for row in await tx.list("api"):
        mock = row.body.get("mockService")
        api = snap.apis_by_id.get(row.id)
        if api is None or not (isinstance(mock, dict) and mock.get("enableMock") is True):
            continue
        responder = MockResponder(row.body.get("apiDefinition") or {})
        api.plan = with_request(api.plan, (*api.plan.request, responder))
        api.scoped_plans = {k: with_request(v, (*v.request, responder)) for k, v in api.scoped_plans.items()}
