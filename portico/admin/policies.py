"""``/policies``, ``/policyActions``, ``/policyStages``, ``/policyActionTemplates``."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import policy_access, teams
from portico.admin.common import ids_param, json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.domain.package import PLAN_STAGE_KEYS
from portico.domain.plan_limits import sla_quota_problem
from portico.domain.policy import LocalizedText, Policy, PolicyAction, StageEnforcements
from portico.policies.base import ConfigError, validate_parameters
from portico.policies.registry import HANDLERS, STAGE_KEYS, STAGES
from portico.store import StoreTransaction
from portico.wire.policies import action_body, policy_body


async def _load_policy(tx: StoreTransaction, policy_id: str) -> tuple[Policy, int]:
    row = await tx.get("policy", policy_id)
    if row is None:
        raise not_found("policy", policy_id)
    return Policy.model_validate(row.body), row.revision


async def list_policies(request: Request) -> Response:
    ids = ids_param(request, "policyIds")
    async with context_of(request).store.read() as tx:
        rows = await tx.list("policy", ids=ids)
        hidden = await teams.hidden_policies(request, tx)
    return json_response({"policy": [policy_body(Policy.model_validate(r.body)) for r in rows if r.id not in hidden]})


async def get_policy(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        policy, _ = await _load_policy(tx, request.path_params["policyId"])
        if policy.id in await teams.hidden_policies(request, tx):
            raise not_found("policy", policy.id)
    return json_response({"policy": policy_body(policy)})


def _enforcements(data: dict[str, Any]) -> list[StageEnforcements]:
    raw = data.get("policyEnforcements")
    if not isinstance(raw, list):
        raise ApiError(400, "field 'policyEnforcements' must be a list")
    try:
        stages = [StageEnforcements.model_validate(s) for s in raw]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(400, f"policyEnforcements.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    for s in stages:
        if s.stageKey not in STAGE_KEYS and s.stageKey not in PLAN_STAGE_KEYS:
            raise ApiError(400, f"unknown stageKey {s.stageKey!r}; expected one of {list(STAGE_KEYS)}")
    return stages


async def _check_actions(request: Request, tx: StoreTransaction, stages: list[StageEnforcements],
                         kept: set[str]) -> None:
    """Every action exists and fits its stage; a newly attached one must be free or one the caller
    may change (an action of another API's policy is not borrowed)."""
    hidden = await policy_access.hidden_actions(request, tx)
    for s in stages:
        for e in s.enforcements:
            row = await tx.get("policyAction", e.enforcementObjectId)
            if row is None or (e.enforcementObjectId not in kept and e.enforcementObjectId in hidden):
                raise ApiError(400, f"unknown policy action {e.enforcementObjectId!r} in stage {s.stageKey}")
            handler = HANDLERS.get(row.body["templateKey"])
            if s.stageKey in PLAN_STAGE_KEYS:  # a plan's rate limit / quota (monetization stages)
                if row.body["templateKey"] not in PLAN_STAGE_KEYS:
                    raise ApiError(400, f"stage {s.stageKey} takes throttle or monitorSLA actions only")
                continue
            if handler is not None and s.stageKey not in handler.allowed_stages():
                raise ApiError(
                    400, f"policy action {e.enforcementObjectId!r} ({handler.template_key}) belongs to stage "
                         f"{' or '.join(handler.allowed_stages())}, not {s.stageKey}",
                )


async def update_policy(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="policy")
    async with ctx.store.transaction() as tx:
        policy, revision = await _load_policy(tx, request.path_params["policyId"])
        if policy.id in await teams.hidden_policies(request, tx):
            raise not_found("policy", policy.id)
        await policy_access.require_policy_change(request, tx, policy)
        if "policyEnforcements" in data:
            stages = _enforcements(data)
            await _check_actions(request, tx, stages, set(policy.action_ids()))
            policy.policyEnforcements = stages
        if "scope" in data and policy.global_:
            if not isinstance(data["scope"], dict):
                raise ApiError(400, "field 'scope' must be an object")
            from portico.admin.global_policies import scope_from

            policy.scope = scope_from(data["scope"])
        for key in ("names", "descriptions"):
            if key in data:
                try:
                    setattr(policy, key, [LocalizedText.model_validate(v) for v in data[key]])
                except (ValidationError, TypeError):
                    raise ApiError(400, f"field '{key}' must be a list of {{value, locale}} objects") from None
        await tx.update("policy", policy.id, policy.model_dump(mode="json", by_alias=True), revision)
    ctx.notify_change()
    return json_response({"policy": policy_body(policy)})


# -- policy actions -------------------------------------------------------------------------------


def _action_from(data: dict[str, Any], action_id: str) -> PolicyAction:
    key = data.get("templateKey")
    if not isinstance(key, str):
        raise ApiError(400, "field 'templateKey' is required")
    handler = HANDLERS.get(key)
    if handler is None:
        raise ApiError(400, f"policy action template {key!r} is not supported; supported: {sorted(HANDLERS)}")
    try:
        validate_parameters(handler, data.get("parameters", []))
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from None
    if key == "monitorSLA" and (problem := sla_quota_problem(data.get("parameters", []))):
        raise ApiError(400, f"monitorSLA: {problem}")
    try:
        return PolicyAction.model_validate({**data, "id": action_id})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(400, f"policyAction.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


async def _check_stored(tx: StoreTransaction, action: PolicyAction) -> None:
    """The action's checks against stored assets (keystores named by a routing sslConfig, ...)."""
    handler = HANDLERS[action.templateKey]
    try:
        await handler.check_stored(validate_parameters(handler, action.parameters), tx)
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from None


async def create_action(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="policyAction")
    action = _action_from(data, str(uuid.uuid4()))
    async with ctx.store.transaction() as tx:
        await _check_stored(tx, action)
        await tx.insert("policyAction", action.id, action.model_dump(mode="json"), name=action.templateKey)
    return json_response({"policyAction": action_body(action)}, status=201)


async def list_actions(request: Request) -> Response:
    ids = ids_param(request, "policyActionIds")
    async with context_of(request).store.read() as tx:
        rows = await tx.list("policyAction", ids=ids)
        hidden = await policy_access.hidden_actions(request, tx)
    return json_response({"policyAction": [action_body(PolicyAction.model_validate(r.body)) for r in rows
                                           if r.id not in hidden]})


async def get_action(request: Request) -> Response:
    action_id = request.path_params["policyActionId"]
    async with context_of(request).store.read() as tx:
        row = await tx.get("policyAction", action_id)
        if row is not None and action_id in await policy_access.hidden_actions(request, tx):
            row = None
    if row is None:
        raise not_found("policy action", action_id)
    return json_response({"policyAction": action_body(PolicyAction.model_validate(row.body))})


async def update_action(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="policyAction")
    action_id = request.path_params["policyActionId"]
    async with ctx.store.transaction() as tx:
        row = await tx.get("policyAction", action_id)
        if row is None:
            raise not_found("policy action", action_id)
        await policy_access.require_action_change(request, tx, action_id)
        if data.get("templateKey", row.body["templateKey"]) != row.body["templateKey"]:
            raise ApiError(400, "the templateKey of a policy action cannot change")
        action = _action_from({**row.body, **data}, action_id)
        await _check_stored(tx, action)
        await tx.update("policyAction", action_id, action.model_dump(mode="json"), row.revision,
                        name=action.templateKey)
    ctx.notify_change()
    return json_response({"policyAction": action_body(action)})


async def delete_action(request: Request) -> Response:
    ctx = context_of(request)
    action_id = request.path_params["policyActionId"]
    async with ctx.store.transaction() as tx:
        if await tx.get("policyAction", action_id) is None:
            raise not_found("policy action", action_id)
        await policy_access.require_action_change(request, tx, action_id)
        for row in await tx.list("policy"):
            if action_id in Policy.model_validate(row.body).action_ids():
                raise ApiError(400, f"policy action {action_id!r} is used by policy {row.id!r}; remove it there first")
        await tx.delete("policyAction", action_id)
    ctx.notify_change()
    return Response(status_code=204)


# -- stages and templates ---------------------------------------------------------------------------


async def policy_stages(request: Request) -> Response:
    stages = [
        {
            "stageKey": key, "names": [{"value": name, "locale": "English"}], "sequence": seq,
            "policyActionTemplates": [k for k, h in HANDLERS.items() if key in h.allowed_stages()],
        }
        for key, name, seq in STAGES
    ]
    return json_response({"policyStages": stages})


def _template(key: str) -> dict[str, Any]:
    handler = HANDLERS[key]
    return {
        "templateKey": key,
        "stageKey": handler.stage,
        "names": [{"value": handler.title, "locale": "English"}],
        "schema": handler.Config.model_json_schema(),
    }


async def list_templates(request: Request) -> Response:
    return json_response({"policyActionTemplates": [_template(k) for k in HANDLERS]})


async def get_template(request: Request) -> Response:
    key = request.path_params["templateKey"]
    if key not in HANDLERS:
        raise not_found("policy action template", key)
    return json_response({"policyActionTemplate": _template(key)})


routes = [
    Route("/policies", list_policies, methods=["GET"]),
    Route("/policies/{policyId}", get_policy, methods=["GET"]),
    Route("/policies/{policyId}", update_policy, methods=["PUT"]),
    Route("/policyActions", create_action, methods=["POST"]),
    Route("/policyActions", list_actions, methods=["GET"]),
    Route("/policyActions/{policyActionId}", get_action, methods=["GET"]),
    Route("/policyActions/{policyActionId}", update_action, methods=["PUT"]),
    Route("/policyActions/{policyActionId}", delete_action, methods=["DELETE"]),
    Route("/policyStages", policy_stages, methods=["GET"]),
    Route("/policyActionTemplates", list_templates, methods=["GET"]),
    Route("/policyActionTemplates/{templateKey}", get_template, methods=["GET"]),
]
