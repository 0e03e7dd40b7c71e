"""Snapshot part: custom content types, and API-specification validators for the APIs that
enforce ``validateAPISpec``/``validateSchema`` (compiled once per snapshot, per API).

``snap.extras["customContentTypes"]``: content type -> base type, from the settings document
``customContentTypes`` (``/configurations/customContentTypes``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from portico.gateway.snapshot import CompiledApi, Snapshot, snapshot_part
from portico.policies._spec.compile import SpecIndex
from portico.policies._spec.policy import SpecPolicy
from portico.policies.base import PolicyHandler
from portico.store import StoreTransaction

log = logging.getLogger("portico.gateway")

CUSTOM_CONTENT_TYPES_ID = "customContentTypes"


def _handlers(api: CompiledApi) -> Iterator[PolicyHandler]:
    for handlers in api.chain.values():
        yield from handlers
    for plan in getattr(api, "scoped_plans", {}).values():  # resource/method-scoped chains
        yield from plan.request
        yield from plan.response


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    row = await tx.get("settings", CUSTOM_CONTENT_TYPES_ID)
    custom: dict[str, str] = dict(row.body) if row is not None else {}
    snap.extras["customContentTypes"] = custom
    for api in snap.apis_by_id.values():
        spec_handlers = {id(h): h for h in _handlers(api) if isinstance(h, SpecPolicy)}
        if not spec_handlers:
            continue
        api_row = await tx.get("api", api.id)
        definition: dict[str, Any] = (api_row.body.get("apiDefinition") if api_row else None) or {}
        try:
            index = SpecIndex(definition)
        except Exception:  # a definition we cannot compile must not stop the whole snapshot
            log.exception("API %s: cannot compile its specification for validation", api.name)
            continue
        for handler in spec_handlers.values():
            assert isinstance(handler, SpecPolicy)
            handler.bind(api.id, index, custom)
