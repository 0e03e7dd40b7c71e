"""The effective policy of an API, a resource and a method: one function, used by the gateway
(to compile its chains) and by the management API (conflicts, applicable global policies).

Rules:
1. The API's own policies come in three levels: SERVICE (the whole API), RESOURCE (one resource
   path) and METHOD (a resource path and some methods). For each stage, the most specific level
   that configures the stage provides its actions; less specific levels are ignored for it.
2. Active global policies that apply to the API (API type, and the scope conditions on name,
   description, version, tags and HTTP method, combined with the scope's AND/OR) add their
   actions to each stage. For templates of which one instance is effective per stage
   (identification, protocol, routing: ``EXCLUSIVE_TEMPLATES``) a global action replaces the
   API's action of the same template, and two global policies bringing the same one conflict:
   the older policy wins and the clash is reported."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from portico.domain.api import Api
from portico.domain.policy import Enforcement, Policy, PolicyAction, ScopeAttribute, ScopeCondition

EXCLUSIVE_TEMPLATES = frozenset({
    "entryProtocolPolicy", "evaluatePolicy", "straightThroughRouting", "loadBalancerRouting",
    "contextBasedRouting", "contentBasedRouting", "dynamicRouting",
})
ROUTING_TEMPLATES = frozenset({
    "straightThroughRouting", "loadBalancerRouting", "contextBasedRouting", "contentBasedRouting", "dynamicRouting",
})
_LEVELS = {"SERVICE": 0, "RESOURCE": 1, "OPERATION": 1, "METHOD": 2}
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")


@dataclass(frozen=True, slots=True)
class Conflict:
    stage: str
    template_key: str
    kept_policy: str
    dropped_policy: str


@dataclass(slots=True)
class Effective:
    stages: dict[str, list[str]] = field(default_factory=dict)  # stage -> action ids in order
    conflicts: list[Conflict] = field(default_factory=list)


def _compare(operation: str, actual: str, expected: str) -> bool:
    a, e = actual.lower(), expected.lower()
    match operation:
        case "EQUALS":
            return a == e
        case "NOT_EQUALS":
            return a != e
        case "CONTAINS":
            return e in a
        case "NOT_CONTAINS":
            return e not in a
        case "STARTS_WITH":
            return a.startswith(e)
        case "NOT_STARTS_WITH":
            return not a.startswith(e)
        case "ENDS_WITH":
            return a.endswith(e)
        case "LESS_THAN" | "GREATER_THAN":
            try:
                x, y = float(actual), float(expected)
            except ValueError:
                x, y = actual, expected  # type: ignore[assignment]
            return x < y if operation == "LESS_THAN" else x > y
    return False


def _attribute_matches(attr: ScopeAttribute, api: Api, method: str | None) -> bool:
    name = attr.attributeName
    if name in HTTP_METHODS:
        return method is None or method == name
    if name == "API_NAME":
        return _compare(attr.operation, api.apiName, attr.value)
    if name == "API_DESCRIPTION":
        return _compare(attr.operation, api.apiDescription, attr.value)
    if name == "API_VERSION":
        return _compare(attr.operation, api.apiVersion, attr.value)
    if name in ("API_TAG", "RESOURCE_OPERATION_TAG", "METHOD_TAG"):
        return any(_compare(attr.operation, t, attr.value) for t in api.tags)
    return False


def _condition_matches(cond: ScopeCondition, api: Api, method: str | None) -> bool:
    if cond.filterType == "HTTP_METHOD":
        if method is None:
            return True  # decided per method
        names = [a.attributeName for a in cond.attributes]
        return not names or method in names
    results = (_attribute_matches(a, api, method) for a in cond.attributes)
    return any(results) if cond.logicalConnector == "OR" else all(results)


def global_applies(policy: Policy, api: Api, method: str | None = None) -> bool:
    """Does the global ``policy`` apply to ``api`` (and, when given, to calls with ``method``)?"""
    scope = policy.scope
    if api.type.upper() not in {t.upper() for t in scope.applicableAPITypes}:
        return False
    if not scope.scopeConditions:
        return True
    results = [_condition_matches(c, api, method) for c in scope.scopeConditions]
    return all(results) if scope.logicalConnector == "AND" else any(results)


def has_method_conditions(policy: Policy) -> bool:
    return any(c.filterType == "HTTP_METHOD" for c in policy.scope.scopeConditions)


def _level_of(policy: Policy, resource: str | None, method: str | None) -> int | None:
    level = _LEVELS.get(policy.policyScope)
    if level is None:
        return None
    if level == 0:
        return 0
    if resource is None or policy.scope.resourcePath != resource:
        return None
    if level == 2 and (method is None or method not in {m.upper() for m in policy.scope.methods}):
        return None
    return level


def _own_stages(
    api: Api, policies: dict[str, Policy], resource: str | None, method: str | None
) -> dict[str, list[str]]:
    best: dict[str, tuple[int, list[str]]] = {}
    for pid in api.policies:
        policy = policies.get(pid)
        if policy is None or policy.global_:
            continue
        level = _level_of(policy, resource, method)
        if level is None:
            continue
        for stage in policy.policyEnforcements:
            ids = [e.enforcementObjectId for e in _ordered(stage.enforcements)]
            current = best.get(stage.stageKey)
            if current is None or level > current[0]:
                best[stage.stageKey] = (level, ids)
            elif level == current[0]:
                current[1].extend(ids)
    return {stage: ids for stage, (_, ids) in best.items()}


def _ordered(enforcements: Iterable[Enforcement]) -> list[Enforcement]:
    def key(e: Enforcement) -> int:
        order = str(e.order or "0")
        return int(order) if order.isdigit() else 0

    return sorted(enforcements, key=key)


def effective_policy(
    api: Api,
    policies: dict[str, Policy],
    global_policies: Iterable[Policy],
    actions: dict[str, PolicyAction],
    resource: str | None = None,
    method: str | None = None,
) -> Effective:
    """Stage -> action ids for ``api`` at ``resource``/``method`` (None: API level), plus conflicts."""
    result = Effective(stages=_own_stages(api, policies, resource, method))
    claimed: dict[tuple[str, str], str] = {}  # (stage, exclusive template) -> global policy id
    for policy in global_policies:
        if not policy.active or not global_applies(policy, api, method):
            continue
        for stage in policy.policyEnforcements:
            ids = result.stages.setdefault(stage.stageKey, [])
            for enf in _ordered(stage.enforcements):
                action = actions.get(enf.enforcementObjectId)
                if action is None:
                    continue
                _merge_global(result, ids, stage.stageKey, action, policy, actions, claimed)
    return result


def _merge_global(
    result: Effective,
    ids: list[str],
    stage: str,
    action: PolicyAction,
    policy: Policy,
    actions: dict[str, PolicyAction],
    claimed: dict[tuple[str, str], str],
) -> None:
    key = action.templateKey
    if key not in EXCLUSIVE_TEMPLATES:
        ids.append(action.id)
        return
    family = "routing" if key in ROUTING_TEMPLATES else key
    owner = claimed.get((stage, family))
    if owner is not None:
        result.conflicts.append(Conflict(stage, key, owner, policy.id))
        return
    claimed[(stage, family)] = policy.id
    same = [i for i in ids if (a := actions.get(i)) is not None and
            ("routing" if a.templateKey in ROUTING_TEMPLATES else a.templateKey) == family]
    for i in same:
        ids.remove(i)
    ids.append(action.id)
