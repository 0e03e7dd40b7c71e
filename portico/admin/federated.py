"""Management writes on federated assets: what their provider owns is changed there.

An API, plan or package ingested from another gateway (:mod:`portico.federation.ingest`) is
written again by every ingestion: the fields ingestion writes (``ingest.API_OWNED``,
``PLAN_OWNED``, ``PACKAGE_OWNED``) belong to the provider. A management write that would change
one is refused with 400 naming the provider and the integration, instead of being accepted and
silently undone by the next ingestion. The same value sent back (a client that reads an asset,
edits a field Portico owns and sends it all back) is not a change. Fields ingestion keeps
(``maturityState``, teams, a plan's terms, a package's name...) stay editable."""

from __future__ import annotations

import copy
from typing import Any

from portico.admin.errors import ApiError
from portico.federation import ingest
from portico.specs import ImportedSpec, SpecError, carry_exposure
from portico.store import StoreTransaction


async def refuse_changes(tx: StoreTransaction, what: str, fed: dict[str, Any], fields: list[str]) -> None:
    """400 when ``fields`` (those a write would change among the provider's) is not empty."""
    if not fields:
        return
    row = await tx.get(ingest.INTEGRATION, str(fed.get("integrationId")))
    stored = row.body if row is not None else {}
    provider = str(fed.get("provider") or stored.get("provider") or "another gateway")
    integration = str(stored.get("name") or fed.get("integrationId"))
    listed = ", ".join(fields)
    raise ApiError(400, f"{what} is federated from {provider} (integration {integration!r}): {listed} "
                        f"{'comes' if len(fields) == 1 else 'come'} from there with each ingestion and cannot be "
                        f"changed in Portico; change {'it' if len(fields) == 1 else 'them'} in {provider} and "
                        "ingest again")


async def refuse_delete(tx: StoreTransaction, what: str, fed: dict[str, Any], goes: str) -> None:
    """400: a federated plan or package goes with its provider's or with the integration."""
    row = await tx.get(ingest.INTEGRATION, str(fed.get("integrationId")))
    stored = row.body if row is not None else {}
    provider = str(fed.get("provider") or stored.get("provider") or "another gateway")
    integration = str(stored.get("name") or fed.get("integrationId"))
    raise ApiError(400, f"{what} is federated from {provider} (integration {integration!r}) and cannot be deleted "
                        f"in Portico: {goes}, or with the integration (DELETE /integrations/{{id}})")


def changed(before: Any, after: Any, names: tuple[str, ...]) -> list[str]:
    """The fields among ``names`` whose values differ between two models of one asset."""
    return [f"'{name}'" for name in names if getattr(before, name) != getattr(after, name)]


def definition_changed(stored: dict[str, Any], spec: ImportedSpec, submitted: dict[str, Any] | None) -> bool:
    """Whether an API definition sent for a federated API differs from the stored one, counting
    the paths' and operations' ``enabled`` flags as an update would set them."""
    candidate = copy.deepcopy(spec.definition)
    current = copy.deepcopy(stored)
    try:
        carry_exposure(candidate, submitted, stored)
        carry_exposure(current, None, stored)
    except SpecError:
        return True
    return candidate != current
