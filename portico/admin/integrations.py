"""``/integrations`` (a Portico extension): federation integrations, their agent status,
discovery and ingestion.

An integration is stored as asset kind ``integration`` ``{id, name, description, provider,
created, modified}``; its live status (agent link, heartbeat, last discovery, last ingestion,
last provider error) comes from :mod:`portico.federation.status` and is never part of the
configuration revision.

``POST /integrations/{id}/ingest`` starts an ingestion job and waits for it up to ``wait``
seconds (query parameter, default 30): 200 with the finished job, else 202 with the running job,
to be polled at ``GET /integrations/{id}/ingestJobs/{jobId}``. Commands run through the
integration's primary agent link; when another node holds it they are relayed there
(:mod:`portico.federation.relay`, ``POST /integrations/{id}/relay``, between nodes only), ingestion
jobs included. No agent linked anywhere: 409; the holding node unreachable: 503."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import (
    bool_param,
    int_param,
    json_response,
    read_body,
    read_json,
    read_object,
    require_str,
)
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.federation import ingest, keys
from portico.federation import protocol as p
from portico.federation.aws import PROVIDER_TYPE as AWS
from portico.federation.controller import Controller, Link, LinkUnavailable, RelayFailed
from portico.federation.relay import HEADER, RelayRefused, check_body
from portico.federation.status import LinkRow
from portico.store import StoreTransaction

PROVIDERS = (AWS,)
KIND = ingest.INTEGRATION
_MAX_WAIT = 300
log = logging.getLogger("portico.admin.integrations")


def _controller(request: Request) -> Controller:
    controller = context_of(request).extras.get("federation")
    if not isinstance(controller, Controller):
        raise ApiError(503, "federation is not running on this node")
    return controller


def _now() -> int:
    return int(time.time() * 1000)


def _command_error(exc: Exception, what: str) -> ApiError:
    if isinstance(exc, RelayFailed):
        return ApiError(503, f"{what}: {exc}")
    if isinstance(exc, LinkUnavailable):
        return ApiError(409, str(exc))
    if isinstance(exc, p.ReplyTimeout):
        return ApiError(504, f"{what}: the agent did not answer in time ({exc})")
    return ApiError(502, f"{what}: the agent reported an error: {exc}")


def _check_text(data: dict[str, Any], key: str, required: bool) -> str | None:
    if key not in data and not required:
        return None
    value = require_str(data, key, required=required).strip()
    if required and not value:
        raise ApiError(400, f"field '{key}' is required")
    if len(value) > (255 if key == "name" else 4000):
        raise ApiError(400, f"field '{key}' is too long")
    return value


async def _load(tx: StoreTransaction, integration_id: str) -> tuple[dict[str, Any], int]:
    row = await tx.get(KIND, integration_id)
    if row is None:
        raise not_found("integration", integration_id)
    return row.body, row.revision


async def _with_status(request: Request, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    status = await _controller(request).board.status_of([b["id"] for b in bodies])
    return [{**b, "status": status[b["id"]]} for b in bodies]


async def create_integration(request: Request) -> Response:
    data = await read_object(request)
    unknown = sorted(set(data) - {"name", "description", "provider"})
    if unknown:
        raise ApiError(400, f"unknown field(s) {unknown}; an integration has name, description and provider")
    name = _check_text(data, "name", True)
    description = _check_text(data, "description", False) or ""
    provider = require_str(data, "provider")
    if provider not in PROVIDERS:
        raise ApiError(400, f"field 'provider' must be one of {list(PROVIDERS)}, got {provider!r}")
    ts, integration_id = _now(), str(uuid.uuid4())
    body: dict[str, Any] = {"id": integration_id, "name": name, "description": description, "provider": provider,
            "created": ts, "modified": ts}
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        await tx.insert(KIND, integration_id, body, name=name)
        tx.changed = False  # the gateway does not read integrations: no configuration revision
    return json_response((await _with_status(request, [body]))[0], status=201)


async def list_integrations(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        bodies = [r.body for r in await tx.list(KIND)]
    return json_response({"integrations": await _with_status(request, bodies)})


async def get_integration(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        body, _ = await _load(tx, request.path_params["integrationId"])
    return json_response((await _with_status(request, [body]))[0])


async def update_integration(request: Request) -> Response:
    data = await read_object(request)
    unknown = sorted(set(data) - {"id", "name", "description", "provider", "status", "created", "modified"})
    if unknown:
        raise ApiError(400, f"unknown field(s) {unknown}; an integration has name, description and provider")
    if "name" in data and (not isinstance(data["name"], str) or not data["name"].strip()):
        raise ApiError(400, "field 'name' must be a non-empty string (leave it out to keep the name)")
    name = _check_text(data, "name", False)
    description = _check_text(data, "description", False)
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        body, revision = await _load(tx, request.path_params["integrationId"])
        if "provider" in data and data["provider"] != body["provider"]:
            raise ApiError(400, f"field 'provider' cannot be changed (the integration is {body['provider']!r}); "
                                "create another integration")
        if "id" in data and data["id"] != body["id"]:
            raise ApiError(400, "field 'id' does not match the integration in the URL")
        body = {**body, "name": body["name"] if name is None else name,
                "description": body["description"] if description is None else description, "modified": _now()}
        await tx.update(KIND, body["id"], body, revision, name=body["name"])
        tx.changed = False
    return json_response((await _with_status(request, [body]))[0])


async def delete_integration(request: Request) -> Response:
    """Deletes the integration and what was ingested from it. Refused (400) while its plans have
    subscriptions unless ``force=true``; forced, their provider keys are revoked first when an
    agent is linked (otherwise the keys stay in the provider). The subscriptions are checked again
    inside the deleting transaction: one made meanwhile (or being made) refuses the deletion (409)
    rather than being deleted with its key left behind."""
    force = bool_param(request, "force")
    ctx = context_of(request)
    controller = _controller(request)
    integration_id = request.path_params["integrationId"]
    async with ctx.store.read() as tx:
        await _load(tx, integration_id)
        subscribed = await ingest.subscribed_plans(tx, integration_id)
        grants = await ingest.grants_on(tx, subscribed)
    if subscribed and not force:
        raise _subscribed(integration_id, subscribed)
    for grant in grants:
        try:
            await controller.unsubscribe(grant)
        except (LinkUnavailable, p.CommandFailed):
            pass  # forced: the key may stay in the provider
    await controller.retry_revocations(integration_id)  # keys of earlier switches still to delete
    async with ctx.store.transaction() as tx:
        await _load(tx, integration_id)
        now_subscribed = await ingest.subscribed_plans(tx, integration_id)
        if now_subscribed and not force:
            raise _subscribed(integration_id, now_subscribed)
        known = {str(g.get("subscriptionId")) for g in grants}
        if any(str(g.get("subscriptionId")) not in known for g in await ingest.grants_on(tx, now_subscribed)):
            raise ApiError(409, f"integration {integration_id}: a subscription to one of its plans was made while "
                                "it was being deleted; try again")
        plans = set(await ingest.integration_plan_ids(tx, integration_id))
        if plans & await keys.claimed_plans(tx):
            raise ApiError(409, f"integration {integration_id}: a subscription to one of its plans is being "
                                "created; try again in a moment")
        await ingest.delete_catalogue(tx, integration_id)
        await keys.drop_scheduled(tx, integration_id)
        await tx.delete(KIND, integration_id)
    await controller.drop_links(integration_id, "the integration was deleted")
    await controller.board.forget(integration_id)
    ctx.notify_change()
    return Response(status_code=204)


def _subscribed(integration_id: str, plans: list[str]) -> ApiError:
    return ApiError(400, f"integration {integration_id} has ingested APIs with subscriptions (plans "
                         f"{', '.join(plans)}); delete those subscriptions first or use force=true")


async def discover(request: Request) -> Response:
    controller = _controller(request)
    integration_id = request.path_params["integrationId"]
    async with context_of(request).store.read() as tx:
        await _load(tx, integration_id)
    try:
        found = await controller.ingestions.discover(integration_id)
    except (LinkUnavailable, p.CommandFailed) as exc:
        raise _command_error(exc, "discovery failed") from None
    return json_response(found)


async def _ingest_body(request: Request) -> list[str]:
    raw = await request.body()
    if not raw.strip():
        return []
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    ids = data.get("apiIds", [])
    if ids is None:
        return []
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise ApiError(400, "field 'apiIds' must be a list of API uniqueIds (from discover); empty or absent for all")
    return list(dict.fromkeys(ids))


async def ingest_apis(request: Request) -> Response:
    controller = _controller(request)
    integration_id = request.path_params["integrationId"]
    wait = int_param(request, "wait", 30, minimum=0, maximum=_MAX_WAIT)
    api_ids = await _ingest_body(request)
    async with context_of(request).store.read() as tx:
        await _load(tx, integration_id)

    async def here(_link: Link) -> tuple[dict[str, Any], bool]:
        job = await controller.ingestions.start(integration_id, api_ids)
        if wait:
            try:
                await asyncio.wait_for(job.done.wait(), wait)
            except TimeoutError:
                pass
        return job.view(), job.done.is_set()

    async def there(row: LinkRow) -> tuple[dict[str, Any], bool]:
        return await controller.relay.ingest(row, api_ids, wait)

    try:
        view, done = await controller.dispatch(integration_id, here, there)
    except (LinkUnavailable, p.CommandFailed) as exc:
        raise _command_error(exc, "ingestion could not start") from None
    await context_of(request).settle()
    return json_response(view, status=200 if done else 202)


async def get_job(request: Request) -> Response:
    """A job of this node, else of the node holding the integration's link (jobs run there)."""
    controller = _controller(request)
    integration_id, job_id = request.path_params["integrationId"], request.path_params["jobId"]
    job = controller.ingestions.jobs.get(job_id)
    if job is not None and job.integration_id == integration_id:
        return json_response(job.view())
    for target in await controller.targets(integration_id):
        if isinstance(target, LinkRow):
            try:
                view = await controller.relay.job(target, job_id)
            except (LinkUnavailable, p.CommandFailed):
                continue
            if view is not None:
                return json_response(view)
    raise ApiError(404, f"ingest job {job_id!r} of integration {integration_id!r} is not known on this node "
                        "nor on the node holding its agent link")


async def relay(request: Request) -> Response:
    """A command relayed by another node (:mod:`portico.federation.relay`): no user credentials,
    a token sealed with the master key the nodes share, checked before the body is read."""
    controller = _controller(request)
    integration_id = request.path_params["integrationId"]
    try:
        claim = controller.relay.tokens.open(controller.relay.box, request.headers.get(HEADER), integration_id,
                                             controller.node_id)
        raw = await read_body(request)
        try:
            op = orjson.loads(raw)
        except orjson.JSONDecodeError:
            op = None
        check_body(claim, raw, op.get("op") if isinstance(op, dict) else None)
    except RelayRefused as exc:
        log.warning("relayed federation request for integration %s from %s refused: %s", integration_id,
                    request.client.host if request.client else "?", exc)
        raise ApiError(401, "relay token refused") from None
    if not isinstance(op, dict):
        raise ApiError(400, "a relayed command is a JSON object")
    return json_response(await controller.relay.serve(integration_id, op))


routes = [
    Route("/integrations", create_integration, methods=["POST"]),
    Route("/integrations", list_integrations, methods=["GET"]),
    Route("/integrations/{integrationId}", get_integration, methods=["GET"]),
    Route("/integrations/{integrationId}", update_integration, methods=["PUT"]),
    Route("/integrations/{integrationId}", delete_integration, methods=["DELETE"]),
    Route("/integrations/{integrationId}/discover", discover, methods=["POST"]),
    Route("/integrations/{integrationId}/ingest", ingest_apis, methods=["POST"]),
    Route("/integrations/{integrationId}/ingestJobs/{jobId}", get_job, methods=["GET"]),
    Route("/integrations/{integrationId}/relay", relay, methods=["POST"], include_in_schema=False),
]
