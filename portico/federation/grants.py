"""Subscriptions to federated plans: the provider's API key, obtained through the agent.

``/subscriptions`` (admin/subscriptions.py) calls :func:`subscribe` before it stores a
subscription to a plan with a ``federation`` field: SUBSCRIBE goes through the integration's
primary agent link, and the key the provider returns is kept as a *grant* (asset kind
``federatedSubscription``, keyed by the application id: the application's credential for the
plan's APIs) and returned to the consumer in the subscription's ``federatedAccess``. Deleting the
subscription calls :func:`revoke` first (UNSUBSCRIBE; a key already gone in the provider counts as
revoked); switching it to another plan stores the new grant first and schedules the old key's
deletion in the same transaction (:mod:`portico.federation.keys`). Nothing is stored when the
provider refuses.

Every federated write of one application runs inside :func:`exclusive`: a lock on this node, and a
claim row in the store that a concurrent request on any node finds (409). A key is revoked on
failure only when no stored grant references it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.federation import ingest, keys
from portico.federation import protocol as p
from portico.federation.controller import Controller, LinkUnavailable, RelayFailed
from portico.store import Store, StoreTransaction

KIND = ingest.GRANT
log = logging.getLogger("portico.federation.grants")
_CLAIM_WAIT = 2.0  # a claim held elsewhere for a moment (a key deletion being retried) is waited for


def _controller(request: Request) -> Controller:
    controller = context_of(request).extras.get("federation")
    if not isinstance(controller, Controller):
        raise ApiError(503, "federation is not running on this node")
    return controller


def _error(exc: Exception, what: str) -> ApiError:
    if isinstance(exc, RelayFailed):
        return ApiError(503, f"{what}: {exc}")
    if isinstance(exc, LinkUnavailable):
        return ApiError(409, f"{what}: {exc}")
    if isinstance(exc, p.ReplyTimeout):
        return ApiError(504, f"{what}: the agent did not answer in time ({exc})")
    return ApiError(400, f"{what}: the provider refused: {exc}")


async def plan_federation(store: Store, plan_id: str) -> dict[str, Any] | None:
    """The ``federation`` field of a plan; None for Portico's own plans (and unknown ids)."""
    async with store.read() as tx:
        row = await tx.get("plan", plan_id)
    return ingest.federation_of(row.body) if row is not None else None


async def subscribe(request: Request, fed: dict[str, Any], plan_id: str, app_id: str,
                    app_name: str) -> dict[str, Any]:
    """SUBSCRIBE the application to the federated plan; the grant to store (ApiError if refused)."""
    integration_id = str(fed.get("integrationId"))
    api: dict[str, Any] | None = None
    async with context_of(request).store.read() as tx:
        for api_id in fed.get("apiIds") or []:
            row = await tx.get("api", api_id)
            api_fed = ingest.federation_of(row.body) if row is not None else None
            if api_fed is not None and not api_fed.get("removedFromProvider"):
                api = {"id": api_id, **api_fed}
                break
    if api is None:
        raise ApiError(400, f"plan {plan_id!r} has no API left in its provider; it cannot be subscribed")
    # One provider subscription per (application, plan): a retried SUBSCRIBE finds its key again
    # instead of making a second one, and a switch to another plan gets a key of its own.
    sub_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"portico:{app_id}/{plan_id}"))
    try:
        answer = await _controller(request).subscribe(
            integration_id, str(api["uniqueId"]), dict(api.get("connectionDetails") or {}), sub_id, app_id, app_name,
            str(fed.get("usagePlanId")))
    except (LinkUnavailable, p.CommandFailed) as exc:
        raise _error(exc, "the subscription was rejected") from None
    return {"applicationId": app_id, "subscriptionId": sub_id, "integrationId": integration_id,
            "provider": fed.get("provider"), "planId": plan_id, "usagePlanId": fed.get("usagePlanId"),
            "apiId": api["uniqueId"], "apiIds": list(fed.get("apiIds") or []), "apiKey": answer["apiKey"],
            "metadata": answer.get("metadata") if isinstance(answer.get("metadata"), dict) else {},
            "created": int(time.time() * 1000)}


async def revoke(request: Request, grant: dict[str, Any]) -> None:
    """UNSUBSCRIBE: delete the provider's key (ApiError when it cannot be done now)."""
    try:
        await _controller(request).unsubscribe(grant)
    except (LinkUnavailable, p.CommandFailed) as exc:
        raise _error(exc, "the provider's API key could not be revoked") from None


async def undo(request: Request, grant: dict[str, Any]) -> None:
    """Undo a grant whose subscription could not be stored: revoke its key, unless a stored grant
    references the same key (then it is that subscription's key and stays). Best effort."""
    async with context_of(request).store.read() as tx:
        if await keys.referenced(tx, grant):
            log.info("not revoking the key of application %s: a stored subscription uses it",
                     grant.get("applicationId"))
            return
    with contextlib.suppress(ApiError):
        await revoke(request, grant)


@contextlib.asynccontextmanager
async def exclusive(request: Request, app_id: str, plan_id: str | None = None,
                    integration_id: str | None = None) -> AsyncIterator[None]:
    """Run one federated write of the application at a time: a lock on this node (a second request
    here waits, then sees the first one's result), and a claim row in the store (a request on
    another node meanwhile waits up to two seconds for it, then is refused with 409)."""
    controller = _controller(request)
    store = context_of(request).store
    async with controller.app_locks.hold(app_id):
        deadline = time.monotonic() + _CLAIM_WAIT
        while True:
            try:
                token = await keys.claim(store, app_id, plan_id, integration_id)
                break
            except keys.Busy:
                if time.monotonic() >= deadline:  # a SUBSCRIBE elsewhere can take up to the reply timeout
                    raise ApiError(409, f"a subscription for application {app_id} is being created or changed; "
                                        "try again in a moment") from None
                await asyncio.sleep(0.1)
        try:
            yield
        finally:
            try:
                await keys.release(store, app_id, token)
            except Exception:  # the claim expires by itself
                log.warning("could not release the subscription claim of application %s", app_id, exc_info=True)


async def retire(tx: StoreTransaction, grant: dict[str, Any]) -> None:
    """In the transaction that stops using ``grant``: schedule its key's deletion."""
    await keys.schedule(tx, grant)


async def revoke_retired(request: Request, grant: dict[str, Any]) -> None:
    """After that transaction committed: delete the key now if possible (the caller holds
    :func:`exclusive`); a failure is logged and retried at the integration's health checks."""
    await _controller(request).revoke_key(grant, claimed=True)


async def revoke_later(request: Request, grant: dict[str, Any]) -> None:
    """After the transaction that retired ``grant`` committed, when its application's claim is no
    longer held: delete the key now if possible, under a claim of its own; a failure (or the
    application busy again) is logged and retried at the integration's health checks."""
    controller = context_of(request).extras.get("federation")
    if not isinstance(controller, Controller):
        return  # (no agent link here: the record waits for the node that has one)
    try:
        await controller.revoke_key(grant)
    except Exception:  # the store is away for a moment: the record stays for the retries
        log.warning("could not revoke the provider key of application %s now; retried later",
                    grant.get("applicationId"), exc_info=True)


async def grant_of(tx: StoreTransaction, app_id: str) -> dict[str, Any] | None:
    row = await tx.get(KIND, app_id)
    return row.body if row is not None else None


async def save(tx: StoreTransaction, grant: dict[str, Any] | None, app_id: str) -> None:
    """Store the application's grant (replacing its previous one), or drop it with None."""
    await tx.delete(KIND, app_id)
    if grant is not None:
        await tx.insert(KIND, app_id, grant)


async def wire(tx: StoreTransaction, app_id: str, mask: bool = False) -> dict[str, Any]:
    """``{"federatedAccess": {...}}`` for a subscription body; empty for Portico's own plans."""
    grant = await grant_of(tx, app_id)
    if grant is None:
        return {}
    apis = []
    for api_id in grant.get("apiIds") or []:
        row = await tx.get("api", api_id)
        fed = ingest.federation_of(row.body) if row is not None else None
        if row is not None and fed is not None:
            details = fed.get("connectionDetails") or {}
            apis.append({"apiId": api_id, "apiName": row.body.get("apiName"), "apiVersion": row.body.get("apiVersion"),
                         "invokeUrl": details.get("invokeUrl")})
    return {"federatedAccess": {"integrationId": grant.get("integrationId"), "provider": grant.get("provider"),
                                "apiKey": "*" * 32 if mask else grant.get("apiKey"),
                                "usagePlanId": grant.get("usagePlanId"), "apis": apis}}
