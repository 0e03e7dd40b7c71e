"""``/rule``: global team assignment rules (APIGatewayAdministration.json ``TeamAssignmentRule``).

A rule names asset kinds (``attributeContexts``: api, application, package, plan), conditions on
name, description or (APIs only) tags with equals/contains/startsWith/endsWith joined by AND or OR,
and the teams it assigns (``teamsAssigned``). Activating a rule assigns its teams to every existing
asset that matches; while active it also assigns them to new assets (``teams.teams_for_new``), and
its teams cannot be removed from those assets by hand."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import bool_param, json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.admin.teams import RULE, principal_of, resolve_teams, save_body
from portico.domain import teams as dt
from portico.store import StoreTransaction

_ATTRIBUTES = {a.lower(): a for a in dt.ATTRIBUTES}
_OPERATORS = {o.lower(): o for o in dt.OPERATORS} | {"startwith": "startsWith", "endwith": "endsWith",
                                                     "starts with": "startsWith", "ends with": "endsWith",
                                                     "start with": "startsWith", "end with": "endsWith"}


def _not_found(rule_id: str) -> ApiError:
    return ApiError(404, f"rule with id {rule_id!r} was not found")


async def load_rule(tx: StoreTransaction, rule_id: str) -> tuple[dt.TeamRule, int]:
    row = await tx.get(RULE, rule_id)
    if row is None:
        raise _not_found(rule_id)
    return dt.TeamRule.model_validate(row.body), row.revision


def _contexts(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ApiError(400, "field 'attributeContexts' must be a non-empty list of asset types "
                            "(api, application, package, plan)")
    out = []
    for item in value:
        kind = dt.KIND_NAMES.get(item.strip().lower())
        if kind is None:
            raise ApiError(400, f"field 'attributeContexts': unknown asset type {item!r}; "
                                "expected api, application, package or plan")
        out.append(kind)
    return list(dict.fromkeys(out))


def _expressions(value: Any) -> list[dt.RuleExpression]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "field 'ruleExpressions' must be a list")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ApiError(400, f"ruleExpressions[{i}] must be an object")
        name, operator, wanted = item.get("attributeName"), item.get("operator"), item.get("attributeValue")
        attribute = _ATTRIBUTES.get(name.strip().lower()) if isinstance(name, str) else None
        if attribute is None:
            raise ApiError(400, f"ruleExpressions[{i}].attributeName must be one of {list(dt.ATTRIBUTES)}")
        op = _OPERATORS.get(operator.strip().lower()) if isinstance(operator, str) else None
        if op is None:
            raise ApiError(400, f"ruleExpressions[{i}].operator must be one of {list(dt.OPERATORS)}")
        if not isinstance(wanted, str) or not wanted:
            raise ApiError(400, f"ruleExpressions[{i}].attributeValue must be a non-empty string")
        out.append(dt.RuleExpression(attributeName=attribute, operator=op, attributeValue=wanted))  # type: ignore[arg-type]
    return out


async def _parse(tx: StoreTransaction, data: dict[str, Any], current: dt.TeamRule | None) -> dt.TeamRule:
    base = current.model_dump() if current else {}
    name = data.get("name", base.get("name"))
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise ApiError(400, "field 'name' is required: a string of at most 255 characters")
    description = data.get("description", base.get("description", ""))
    if not isinstance(description, str):
        raise ApiError(400, "field 'description' must be a string")
    rule_type = data.get("ruleType", dt.RULE_TYPE)
    if rule_type != dt.RULE_TYPE:
        raise ApiError(400, f"field 'ruleType' must be {dt.RULE_TYPE!r}")
    operator = data.get("ruleLogicalOperator", base.get("ruleLogicalOperator", "AND"))
    if not isinstance(operator, str) or operator.upper() not in ("AND", "OR"):
        raise ApiError(400, "field 'ruleLogicalOperator' must be AND or OR")
    contexts = _contexts(data.get("attributeContexts")) if "attributeContexts" in data or not current \
        else current.attributeContexts
    expressions = _expressions(data["ruleExpressions"]) if "ruleExpressions" in data \
        else (current.ruleExpressions if current else [])
    teams_value = data.get("teamsAssigned", base.get("teamsAssigned"))
    if not isinstance(teams_value, list) or not teams_value or not all(isinstance(t, str) for t in teams_value):
        raise ApiError(400, "field 'teamsAssigned' must be a non-empty list of team ids or names")
    teams = await resolve_teams(tx, teams_value, "teamsAssigned")
    return dt.TeamRule(
        id=current.id if current else str(uuid.uuid4()), name=name.strip(), description=description,
        attributeContexts=contexts, ruleLogicalOperator=operator.upper(),  # type: ignore[arg-type]
        ruleExpressions=expressions, teamsAssigned=teams,
        owner=current.owner if current else "Administrator",
        active=current.active if current else False,
    )


async def _check_name(tx: StoreTransaction, rule: dt.TeamRule) -> None:
    for row in await tx.list(RULE):
        if row.id != rule.id and str(row.body.get("name", "")).lower() == rule.name.lower():
            raise ApiError(409, f"a team assignment rule named {rule.name!r} already exists")


async def apply_rule(tx: StoreTransaction, rule: dt.TeamRule) -> int:
    """Assign the rule's teams to every existing asset it matches; returns how many changed."""
    changed = 0
    for kind in rule.attributeContexts:
        for row in await tx.list(kind):
            if not dt.rule_matches(rule, kind, row.body):
                continue
            teams = dt.with_administrators([*dt.asset_teams(row.body), *rule.teamsAssigned])
            if teams != row.body.get("teams"):
                await save_body(tx, kind, row, {**row.body, "teams": teams})
                changed += 1
    return changed


def _rule_body(rule: dt.TeamRule) -> dict[str, Any]:
    return rule.model_dump(mode="json")


async def list_rules(request: Request) -> Response:
    rule_type = request.query_params.get("ruleType")
    only_active = bool_param(request, "active") if request.query_params.get("active") else None
    async with context_of(request).store.read() as tx:
        rules = [dt.TeamRule.model_validate(r.body) for r in await tx.list(RULE)]
    rules = [r for r in rules if (not rule_type or r.ruleType == rule_type)
             and (only_active is None or r.active == only_active)]
    return json_response({"rule": [_rule_body(r) for r in rules]})


async def get_rule(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        rule, _ = await load_rule(tx, request.path_params["ruleId"])
    return json_response({"rule": _rule_body(rule)})


async def create_rule(request: Request) -> Response:
    """A new rule starts inactive (as in the reference) unless the body says ``"active": true``."""
    ctx = context_of(request)
    data = await read_object(request, envelope="rule")
    active = data.get("active", False)
    if not isinstance(active, bool):
        raise ApiError(400, "field 'active' must be true or false")
    async with ctx.store.transaction() as tx:
        rule = await _parse(tx, data, None)
        principal = principal_of(request)
        rule.owner = principal.login_id if principal else rule.owner
        rule.active = active
        await _check_name(tx, rule)
        await tx.insert(RULE, rule.id, _rule_body(rule), name=rule.name)
        if rule.active:
            await apply_rule(tx, rule)
    ctx.notify_change()
    return json_response({"rule": _rule_body(rule)}, status=201)


async def update_rule(request: Request) -> Response:
    """An active rule is applied again with its new conditions (teams it assigned before stay)."""
    ctx = context_of(request)
    rule_id = request.path_params["ruleId"]
    async with ctx.store.read() as tx:
        await load_rule(tx, rule_id)
    data = await read_object(request, envelope="rule")
    async with ctx.store.transaction() as tx:
        current, revision = await load_rule(tx, rule_id)
        rule = await _parse(tx, data, current)
        await _check_name(tx, rule)
        await tx.update(RULE, rule.id, _rule_body(rule), revision, name=rule.name)
        if rule.active:
            await apply_rule(tx, rule)
    ctx.notify_change()
    return json_response({"rule": _rule_body(rule)})


async def delete_rule(request: Request) -> Response:
    """The teams the rule assigned stay on the assets, and can be removed by hand from then on."""
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        rule, _ = await load_rule(tx, request.path_params["ruleId"])
        await tx.delete(RULE, rule.id)
    ctx.notify_change()
    return Response(status_code=204)


async def _set_active(request: Request, active: bool) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        rule, revision = await load_rule(tx, request.path_params["ruleId"])
        rule.active = active
        await tx.update(RULE, rule.id, _rule_body(rule), revision, name=rule.name)
        if active:
            await apply_rule(tx, rule)
    ctx.notify_change()
    return json_response({"rule": _rule_body(rule)})


async def activate_rule(request: Request) -> Response:
    """Activate and apply to every existing asset that matches (again, when already active)."""
    return await _set_active(request, True)


async def deactivate_rule(request: Request) -> Response:
    return await _set_active(request, False)


routes = [
    Route("/rule", list_rules, methods=["GET"]),
    Route("/rule", create_rule, methods=["POST"]),
    Route("/rule/{ruleId}", get_rule, methods=["GET"]),
    Route("/rule/{ruleId}", update_rule, methods=["PUT"]),
    Route("/rule/{ruleId}", delete_rule, methods=["DELETE"]),
    Route("/rule/{ruleId}/activate", activate_rule, methods=["PUT"]),
    Route("/rule/{ruleId}/deactivate", deactivate_rule, methods=["PUT"]),
]
