"""A plan's limits, read from the actions of its rate-limit and quota policies, and the
counter keys the gateway and the usage endpoints share.

Rate limit: ``throttle`` actions of the plan's first policy (the lowest limit applies).
Quota: a ``throttle`` action of the quota policy (blocks when used up) or a ``monitorSLA``
action (only notifies) whose ``value`` carries ``extendedProperties`` ``quota`` and
``notifyPercent``. Both count per application across every API of the package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portico.domain.package import Plan, Subscription
from portico.domain.policy import Policy, PolicyAction
from portico.policies.base import ConfigError, validate_parameters
from portico.policies.throttle import Limit, Throttle, ThrottleConfig


@dataclass(frozen=True, slots=True)
class PlanLimits:
    rate: Limit | None = None
    quota: Limit | None = None
    quota_blocks: bool = True
    notify_percent: int | None = None


def _throttle_limit(action: PolicyAction, name: str) -> Limit | None:
    try:
        config = validate_parameters(Throttle, action.parameters)
    except ConfigError:
        return None
    assert isinstance(config, ThrottleConfig)
    rule = config.throttleRule
    count = rule.value if rule.monitorRuleOperator == "GT" else rule.value - 1
    return Limit(name, max(count, 0), config.alertInterval, config.alertIntervalUnit)


def _first(params: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    return next((p for p in params if isinstance(p, dict) and p.get("templateKey") == key), None)


def _value(param: dict[str, Any] | None) -> str | None:
    values = param.get("values") if param else None
    return str(values[0]) if isinstance(values, list) and values else None


def _sla_quota(action: PolicyAction) -> tuple[Limit, int | None] | None:
    """monitorSLA quota: ``monitorRules.value`` with extendedProperties quota / notifyPercent."""
    rules = _first(action.parameters, "monitorRules")
    inner = rules.get("parameters", []) if rules else []
    value = _first(inner, "value")
    props = {p.get("key"): p.get("value") for p in (value or {}).get("extendedProperties", []) if isinstance(p, dict)}
    try:
        quota = int(float(str(props.get("quota") or _value(value) or "")))
        interval = int(_value(_first(action.parameters, "alertInterval")) or "1")
        unit = _value(_first(action.parameters, "alertIntervalUnit")) or "minutes"
        notify = int(float(str(props["notifyPercent"]))) if props.get("notifyPercent") else None
    except ValueError:
        return None
    return Limit("quota", quota, max(interval, 1), unit), notify


def _stage_actions(policy: Policy | None, actions: dict[str, PolicyAction]) -> list[PolicyAction]:
    if policy is None:
        return []
    return [actions[i] for i in policy.action_ids() if i in actions]


def plan_limits(plan: Plan, policies: dict[str, Policy], actions: dict[str, PolicyAction]) -> PlanLimits:
    rates = [
        limit for a in _stage_actions(policies.get(plan.rate_policy_id or ""), actions)
        if a.templateKey == "throttle" and (limit := _throttle_limit(a, "rate limit")) is not None
    ]
    rate = min(rates, key=lambda r: r.count) if rates else None
    for action in _stage_actions(policies.get(plan.quota_policy_id or ""), actions):
        if action.templateKey == "throttle":
            quota = _throttle_limit(action, "quota")
            if quota is not None:
                return PlanLimits(rate, quota, True, None)
        if action.templateKey == "monitorSLA":
            found = _sla_quota(action)
            if found is not None:
                return PlanLimits(rate, found[0], False, found[1])
    return PlanLimits(rate)


QUOTA_PREFIX = "q:"


def quota_key(sub: Subscription) -> str:
    return f"{QUOTA_PREFIX}{sub.applicationId}:{sub.quotaEpoch}"


def rate_key(sub: Subscription) -> str:
    return f"pr:{sub.applicationId}:{sub.quotaEpoch}"
