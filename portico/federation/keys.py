"""Provider keys outside the grant rows: writes in progress, and keys still to be deleted.

**Writes in progress.** Only one federated write (subscribe, switch, unsubscribe) runs per
application at a time, across nodes: :func:`claim` inserts a row of kind
``federatedSubscriptionPending`` keyed by the application id in its own transaction before the
agent is asked anything; a second request finds it and is refused (:class:`Busy`). A claim older
than :data:`CLAIM_TTL_MS` was left by a node that stopped and may be taken over.

**Keys to delete.** A key is scheduled in the same transaction that stops Portico from using it (a
subscription switched to another plan, a plan removed by ingestion whose key could not be revoked
at once), so a failure between the two never leaves a stored grant pointing at a deleted key nor a
forgotten key in the provider. Rows of kind ``federatedKeyRevocation``, keyed by the grant's
``subscriptionId``: ``{grant, integrationId, since, attempts, lastError}``; the controller retries
them at every health check of the integration's primary link. A key that a stored grant still
references is never deleted: its record is dropped instead.

Neither kind is configuration: writes leave ``config_state.revision`` alone."""

from __future__ import annotations

import uuid
from typing import Any

from portico.federation.ingest import GRANT
from portico.store import ConflictError, Store, StoreTransaction
from portico.store.db import now_ms

CLAIM = "federatedSubscriptionPending"
REVOCATION = "federatedKeyRevocation"
CLAIM_TTL_MS = 10 * 60 * 1000  # longer than any SUBSCRIBE can take (reply timeout 60 s, AWS retries)


class Busy(Exception):
    """Another federated write for the application is under way."""


# -- writes in progress ---------------------------------------------------------------------------

async def claim(store: Store, app_id: str, plan_id: str | None, integration_id: str | None) -> str:
    """Claim the application's federated write; the claim's token (for :func:`release`). Busy if held."""
    token = str(uuid.uuid4())
    async with store.transaction() as tx:
        row = await tx.get(CLAIM, app_id)
        if row is not None:
            if now_ms() - int(row.body.get("started", 0)) < CLAIM_TTL_MS:
                raise Busy(app_id)
            await tx.delete(CLAIM, app_id)  # left by a node that stopped mid-way
        try:
            await tx.insert(CLAIM, app_id, {"applicationId": app_id, "planId": plan_id,
                                            "integrationId": integration_id, "token": token, "started": now_ms()})
        except ConflictError:
            raise Busy(app_id) from None
        tx.changed = False
    return token


async def release(store: Store, app_id: str, token: str) -> None:
    async with store.transaction() as tx:
        row = await tx.get(CLAIM, app_id)
        if row is not None and row.body.get("token") == token:
            await tx.delete(CLAIM, app_id)
        tx.changed = False


async def claimed_plans(tx: StoreTransaction) -> set[str]:
    """Plans with a subscription being written right now (not to be removed under it)."""
    horizon = now_ms() - CLAIM_TTL_MS
    return {str(r.body.get("planId")) for r in await tx.list(CLAIM) if int(r.body.get("started", 0)) >= horizon}


# -- keys to delete -------------------------------------------------------------------------------

def key_id(grant: dict[str, Any]) -> str | None:
    metadata = grant.get("metadata")
    value = metadata.get("apiKeyId") if isinstance(metadata, dict) else None
    return str(value) if value else None


def _record_id(grant: dict[str, Any]) -> str:
    return str(grant.get("subscriptionId") or grant.get("applicationId"))


async def schedule(tx: StoreTransaction, grant: dict[str, Any], reason: str | None = None) -> None:
    """Record that ``grant``'s provider key must be deleted (in the caller's transaction)."""
    await tx.delete(REVOCATION, _record_id(grant))
    await tx.insert(REVOCATION, _record_id(grant), {"grant": grant, "integrationId": grant.get("integrationId"),
                                                    "since": now_ms(), "attempts": 0, "lastError": reason})


async def referenced(tx: StoreTransaction, grant: dict[str, Any]) -> bool:
    """Whether a stored grant holds the same provider key."""
    wanted = key_id(grant)
    return wanted is not None and any(key_id(row.body) == wanted for row in await tx.list(GRANT))


async def scheduled(store: Store, integration_id: str) -> list[dict[str, Any]]:
    """The grants whose keys are still to be deleted for the integration."""
    async with store.read() as tx:
        return [row.body["grant"] for row in await tx.list(REVOCATION)
                if row.body.get("integrationId") == integration_id and isinstance(row.body.get("grant"), dict)]


async def settle(store: Store, grant: dict[str, Any], error: str | None) -> None:
    """Drop the record (``error`` None: the key is gone or still in use) or note the failed attempt."""
    async with store.transaction() as tx:
        row = await tx.get(REVOCATION, _record_id(grant))
        if row is not None:
            if error is None:
                await tx.delete(REVOCATION, row.id)
            else:
                body = {**row.body, "attempts": int(row.body.get("attempts", 0)) + 1, "lastError": error,
                        "lastAttempt": now_ms()}
                await tx.update(REVOCATION, row.id, body, row.revision)
        tx.changed = False


async def drop_scheduled(tx: StoreTransaction, integration_id: str) -> int:
    """Forget the integration's scheduled deletions (it is being deleted: no agent will do them)."""
    rows = [r for r in await tx.list(REVOCATION) if r.body.get("integrationId") == integration_id]
    for row in rows:
        await tx.delete(REVOCATION, row.id)
    return len(rows)
