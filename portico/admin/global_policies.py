"""Global policies and resource/method-level policies.

``POST /policies`` creates a GLOBAL policy (filters in ``scope``: API types and conditions on API
name, description, version, tags and HTTP method), or a RESOURCE / METHOD policy of one API
(``?apiId=``; ``scope.resourcePath`` and ``scope.methods``: a Portico extension of the reference's
scopes). ``activate``/``deactivate`` switch global policies; ``/policies/{id}/apis`` lists the APIs
a global policy applies to, ``/conflicts`` the clashes it causes, ``/apis/{id}/globalPolicies``
the active global policies that apply to an API."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import policy_access, teams
from portico.admin.api_assets import load_api, save_api
from portico.admin.common import bool_param, json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.domain.api import Api
from portico.domain.effective_policy import effective_policy, global_applies
from portico.domain.policy import LocalizedText, Policy, PolicyAction, PolicyScopeFilter
from portico.policies.registry import HANDLERS, STAGE_KEYS
from portico.store import StoreTransaction
from portico.wire.apis import api_list
from portico.wire.policies import policy_body

SCOPES = {"GLOBAL", "RESOURCE", "METHOD"}
BUILTIN_TRANSACTION_LOGGING = "GlobalLogInvocationPolicy"


async def _load(tx: StoreTransaction, policy_id: str) -> tuple[Policy, int]:
    row = await tx.get("policy", policy_id)
    if row is None:
        raise not_found("policy", policy_id)
    return Policy.model_validate(row.body), row.revision


async def _save(tx: StoreTransaction, policy: Policy, revision: int | None) -> None:
    body = policy.model_dump(mode="json", by_alias=True)
    if revision is None:
        await tx.insert("policy", policy.id, body)
    else:
        await tx.update("policy", policy.id, body, revision)


def _parse(data: dict[str, Any]) -> Policy:
    scope = str(data.get("policyScope", "GLOBAL")).upper()
    if scope not in SCOPES:
        raise ApiError(400, f"field 'policyScope' must be one of {sorted(SCOPES)} to create a policy, got {scope!r}")
    try:
        policy = Policy.model_validate({**data, "id": str(uuid.uuid4()), "policyScope": scope,
                                        "global": scope == "GLOBAL", "active": False, "systemPolicy": False})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(400, f"policy.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if not policy.names:
        policy.names = [LocalizedText(value=f"{scope.title()} policy")]
    if scope in ("RESOURCE", "METHOD") and not policy.scope.resourcePath:
        raise ApiError(400, "field 'scope.resourcePath' is required for a RESOURCE or METHOD policy")
    if scope == "METHOD" and not policy.scope.methods:
        raise ApiError(400, "field 'scope.methods' is required for a METHOD policy")
    return policy


async def _check_enforcements(request: Request, tx: StoreTransaction, policy: Policy) -> None:
    hidden = await policy_access.hidden_actions(request, tx)
    for stage in policy.policyEnforcements:
        if stage.stageKey not in STAGE_KEYS:
            raise ApiError(400, f"unknown stageKey {stage.stageKey!r}; expected one of {list(STAGE_KEYS)}")
        for enf in stage.enforcements:
            row = await tx.get("policyAction", enf.enforcementObjectId)
            if row is None or enf.enforcementObjectId in hidden:
                raise ApiError(400, f"unknown policy action {enf.enforcementObjectId!r} in stage {stage.stageKey}")
            handler = HANDLERS.get(row.body.get("templateKey", ""))
            if handler is not None and stage.stageKey not in handler.allowed_stages():
                raise ApiError(400, f"policy action {enf.enforcementObjectId!r} ({handler.template_key}) cannot run "
                                    f"in stage {stage.stageKey}")


async def create_policy(request: Request) -> Response:
    """Create a GLOBAL policy, or a RESOURCE/METHOD policy of the API named by ``apiId``."""
    ctx = context_of(request)
    policy = _parse(await read_object(request, envelope="policy"))
    api_id = request.query_params.get("apiId")
    async with ctx.store.transaction() as tx:
        if policy.policyScope == "GLOBAL":
            policy_access.require_global_create(request)
        await _check_enforcements(request, tx, policy)
        if policy.policyScope != "GLOBAL":
            if not api_id:
                raise ApiError(400, "query parameter 'apiId' is required for a RESOURCE or METHOD policy")
            api, revision = await load_api(tx, api_id)
            await policy_access.require_api_policy_create(request, tx, api)
            _check_resource(api, policy)
            api.policies.append(policy.id)
            await save_api(tx, api, revision)
        await _save(tx, policy, None)
    ctx.notify_change()
    return json_response({"policy": policy_body(policy)}, status=201)


def _check_resource(api: Api, policy: Policy) -> None:
    paths = api.apiDefinition.get("paths") or {}
    path = policy.scope.resourcePath
    if path not in paths:
        raise ApiError(400, f"scope.resourcePath {path!r} is not a resource of API {api.apiName}")
    for method in policy.scope.methods:
        if method.lower() not in paths[path]:
            raise ApiError(400, f"scope.methods: {method} is not an operation of {path}")


async def delete_policy(request: Request) -> Response:
    ctx = context_of(request)
    policy_id = request.path_params["policyId"]
    async with ctx.store.transaction() as tx:
        policy, _ = await _load(tx, policy_id)
        if policy.id in await teams.hidden_policies(request, tx):
            raise not_found("policy", policy_id)
        await policy_access.require_policy_change(request, tx, policy)
        if policy.systemPolicy or policy.id == BUILTIN_TRANSACTION_LOGGING:
            raise ApiError(400, f"policy {policy_id!r} is a system policy and cannot be deleted")
        if policy.global_ and policy.active:
            raise ApiError(400, f"global policy {policy_id!r} is active; deactivate it before deleting")
        owners = [Api.model_validate(r.body) for r in await tx.list("api")]
        owners = [a for a in owners if policy_id in a.policies]
        if policy.policyScope == "SERVICE" and owners:
            raise ApiError(400, f"policy {policy_id!r} is the policy of API {owners[0].apiName}; delete the API")
        for api in owners:
            row = await tx.get("api", api.id)
            assert row is not None
            api.policies = [p for p in api.policies if p != policy_id]
            await save_api(tx, api, row.revision)
        for action_id in policy.action_ids():
            await tx.delete("policyAction", action_id)
        await tx.delete("policy", policy_id)
    ctx.notify_change()
    return Response(status_code=204)


async def _set_active(request: Request, active: bool) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        policy, revision = await _load(tx, request.path_params["policyId"])
        if not policy.global_:
            raise ApiError(400, f"{policy.id} is not a global policy.")
        if policy.active == active:
            raise ApiError(400, f"global policy {policy.id} is already {'active' if active else 'inactive'}")
        if active and not policy.policyEnforcements:
            raise ApiError(400, f"global policy {policy.id} has no policy actions to enforce")
        policy.active = active
        await _save(tx, policy, revision)
    ctx.notify_change()
    return json_response({"policy": policy_body(policy)})


async def activate(request: Request) -> Response:
    return await _set_active(request, True)


async def deactivate(request: Request) -> Response:
    return await _set_active(request, False)


async def _global(tx: StoreTransaction, policy_id: str) -> Policy:
    policy, _ = await _load(tx, policy_id)
    if not policy.global_:
        raise ApiError(400, f"{policy_id} is not a global policy.")
    return policy


async def applicable_apis(request: Request) -> Response:
    active_only = bool_param(request, "active", False)
    async with context_of(request).store.read() as tx:
        policy = await _global(tx, request.path_params["policyId"])
        apis = [Api.model_validate(r.body) for r in await tx.list("api")]
    chosen = [a for a in apis if global_applies(policy, a) and (a.isActive or not active_only)]
    return json_response(api_list(chosen))


async def _everything(tx: StoreTransaction) -> tuple[dict[str, Policy], dict[str, PolicyAction], list[Api]]:
    policies = {r.id: Policy.model_validate(r.body) for r in await tx.list("policy")}
    actions = {r.id: PolicyAction.model_validate(r.body) for r in await tx.list("policyAction")}
    return policies, actions, [Api.model_validate(r.body) for r in await tx.list("api")]


async def conflicts(request: Request) -> Response:
    """200 with the policy when it conflicts with nothing; else 500 (as the reference) with details."""
    active_only = bool_param(request, "active", False)
    async with context_of(request).store.read() as tx:
        policy = await _global(tx, request.path_params["policyId"])
        policies, actions, apis = await _everything(tx)
    others = [p for p in policies.values() if p.global_ and p.active and p.id != policy.id]
    candidates = sorted([*others, policy.model_copy(update={"active": True})], key=lambda p: p.id)
    found = []
    for api in apis:
        if (active_only and not api.isActive) or not global_applies(policy, api):
            continue
        for clash in effective_policy(api, policies, candidates, actions).conflicts:
            if policy.id in (clash.kept_policy, clash.dropped_policy):
                found.append({"apiId": api.id, "apiName": api.apiName, "stageKey": clash.stage,
                              "templateKey": clash.template_key, "policies": [clash.kept_policy, clash.dropped_policy]})
    if found:
        return json_response({"errorDetails": f"global policy {policy.id} conflicts with other global policies",
                              "conflicts": found}, status=500)
    return json_response({"policy": policy_body(policy)})


async def api_global_policies(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        api, _ = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        rows = await tx.list("policy")
    applicable = [p for p in (Policy.model_validate(r.body) for r in rows)
                  if p.global_ and p.active and global_applies(p, api)]
    return json_response({"policy": [policy_body(p) for p in applicable]})


def scope_from(data: dict[str, Any]) -> PolicyScopeFilter:
    try:
        return PolicyScopeFilter.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(400, f"scope.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


routes = [
    Route("/policies", create_policy, methods=["POST"]),
    Route("/policies/{policyId}", delete_policy, methods=["DELETE"]),
    Route("/policies/{policyId}/activate", activate, methods=["PUT"]),
    Route("/policies/{policyId}/deactivate", deactivate, methods=["PUT"]),
    Route("/policies/{policyId}/apis", applicable_apis, methods=["GET"]),
    Route("/policies/{policyId}/conflicts", conflicts, methods=["GET"]),
    Route("/apis/{apiId}/globalPolicies", api_global_policies, methods=["GET"]),
]


async def seed_transaction_logging(tx: StoreTransaction) -> None:
    """The built-in ``GlobalLogInvocationPolicy`` ("Transaction logging"), inactive until switched on.

    Every gateway call already records a transaction event; activating this policy applies its
    ``logInvocation`` settings (headers, payloads, frequency) to all APIs."""
    if await tx.get("policy", BUILTIN_TRANSACTION_LOGGING) is not None or "logInvocation" not in HANDLERS:
        return
    action_id = f"{BUILTIN_TRANSACTION_LOGGING}Action"
    action = PolicyAction(id=action_id, names=[LocalizedText(value="Log Invocation")], templateKey="logInvocation",
                          parameters=[{"templateKey": "storeRequestHeaders", "values": ["true"]},
                                      {"templateKey": "logGenerationFrequency", "values": ["Always"]}])
    await tx.insert("policyAction", action_id, action.model_dump(mode="json"), name="logInvocation")
    policy = Policy.model_validate({
        "id": BUILTIN_TRANSACTION_LOGGING, "names": [{"value": "Transaction logging", "locale": "English"}],
        "policyScope": "GLOBAL", "global": True, "active": False, "systemPolicy": True,
        "policyEnforcements": [{"stageKey": "LMT", "enforcements": [{"enforcementObjectId": action_id, "order": "0"}]}],
    })
    await _save(tx, policy, None)
